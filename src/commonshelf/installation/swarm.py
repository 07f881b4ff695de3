"""Docker Swarm stacks: deploy a rendered compose file and watch it converge or roll back.

`docker stack deploy` has no SDK equivalent, so it runs through the docker
client; watching uses the SDK. An update is judged the way Swarm judges it:
`update_config.failure_action: rollback` makes Swarm restore the previous spec
when new tasks fail their healthchecks, and this module reports that outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from commonshelf.platform.errors import DeployError
from commonshelf.platform.proc import run
from commonshelf.platform.wait import poll

STACK_LABEL = "com.docker.stack.namespace"
IN_PROGRESS = frozenset({"updating", "rollback_started", "paused", "rollback_paused"})


def deploy(stack: str, compose_file: Path) -> None:
    run(
        [
            "docker",
            "stack",
            "deploy",
            "--prune",
            "--resolve-image",
            "never",
            "-c",
            str(compose_file),
            stack,
        ],
        what=f"`docker stack deploy {stack}`",
        fix=f"check the rendered stack in {compose_file}.",
        error=DeployError,
    )


def remove(client: docker.DockerClient, stack: str, timeout: float = 90) -> None:
    """`docker stack rm`, then wait until its containers and networks are gone (volumes in
    use cannot be removed, and a new deploy of the same stack must not meet old tasks).

    The engine removes a stack's services, then its networks, without waiting for the tasks
    to stop: a network still "in use by task" fails the command. That is a race, not a
    refusal: the tasks stop, and the removal is asked again (it is idempotent)."""
    label = {"label": f"{STACK_LABEL}={stack}"}
    for attempt in range(5):
        try:
            run(
                ["docker", "stack", "rm", stack],
                what=f"`docker stack rm {stack}`",
                fix="see `docker stack ls`.",
                error=DeployError,
            )
            break
        except DeployError as exc:
            if "in use by task" not in str(exc) or attempt == 4:
                raise
            poll(
                lambda: not client.containers.list(all=True, sparse=True, filters=label),
                timeout / 5,
                0.5,
            )

    def gone() -> bool:
        return not client.containers.list(all=True, sparse=True, filters=label) and not [
            n for n in client.networks.list(filters=label)
        ]

    if not poll(gone, timeout, 0.5):
        raise DeployError(
            f"Stack {stack} was not gone {timeout:.0f} s after `docker stack rm`.",
            f"see `docker ps -a --filter label={STACK_LABEL}={stack}`.",
        )


def restart_service(client: docker.DockerClient, service: Any, timeout: float) -> None:
    """Replace a service's tasks (`docker service update --force`) and wait until new
    tasks run, healthy."""
    before = {t["ID"] for t in service.tasks(filters={"desired-state": "running"})}
    service.reload()
    service.force_update()

    def replaced() -> bool:
        service.reload()
        tasks = service.tasks(filters={"desired-state": "running"})
        fresh = [t for t in tasks if t["ID"] not in before]
        state = service_state(service)
        return (
            bool(fresh)
            and all(t.get("Status", {}).get("State") == "running" for t in fresh)
            and state.healthy
            and state.update not in IN_PROGRESS
        )

    if not poll(replaced, timeout, 0.5):
        raise DeployError(
            f"{service.name} did not come back healthy within {timeout:.0f} s of a restart.",
            f"see `docker service ps {service.name}`.",
        )


def stack_services(client: docker.DockerClient, stack: str) -> list[Any]:
    return list(client.services.list(filters={"label": f"{STACK_LABEL}={stack}"}))


def service_image(service: Any) -> str:
    return str(service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])


@dataclass(frozen=True)
class ServiceState:
    name: str
    image: str
    desired: int
    running: int
    update: str  # Swarm's UpdateStatus.State, or "" when none

    @property
    def healthy(self) -> bool:
        return self.running >= self.desired > 0


def service_state(service: Any) -> ServiceState:
    service.reload()
    spec = service.attrs["Spec"]
    desired = int(spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 1))
    image = service_image(service)
    running = sum(
        1
        for task in service.tasks(filters={"desired-state": "running"})
        if task.get("Status", {}).get("State") == "running"
        and task["Spec"]["ContainerSpec"]["Image"] == image
    )
    update = (service.attrs.get("UpdateStatus") or {}).get("State", "")
    return ServiceState(spec["Name"], image, desired, running, update)


def wait_converged(
    client: docker.DockerClient, stack: str, expected: dict[str, str], timeout: float
) -> list[ServiceState]:
    """Wait until every service runs its expected image, healthy; raise if Swarm rolls back.

    `expected` maps full service names (`stack_service`) to the image each must run.
    """
    states: list[ServiceState] = []

    def converged() -> list[ServiceState] | None:
        nonlocal states
        services = {s.name: s for s in stack_services(client, stack)}
        missing = sorted(set(expected) - set(services))
        states = [service_state(services[name]) for name in sorted(expected) if name in services]
        # A rollback restores the previous spec, so its image differs from the expected one;
        # a stale status from an earlier update still shows the new spec's image.
        settled = [
            s
            for s in states
            if s.update in ("rollback_completed", "rollback_paused") and s.image != expected[s.name]
        ]
        if settled:
            names = ", ".join(s.name for s in settled)
            raise DeployError(
                f"The update of {names} failed its health checks; Swarm rolled it back to the "
                "previous version, which is running. Your data was not touched.",
                f"see `docker service ps {settled[0].name}` and the app's logs.",
            )
        if not missing and all(
            s.healthy and s.image == expected[s.name] and s.update not in IN_PROGRESS
            for s in states
        ):
            return states
        return None

    done = poll(converged, timeout, 1)
    if done is not None:
        return done
    waiting = (
        ", ".join(
            f"{s.name} ({s.running}/{s.desired} running, update '{s.update}')" for s in states
        )
        or "no services"
    )
    raise DeployError(
        f"Stack {stack} did not become healthy within {int(timeout)} s: {waiting}.",
        f"see `docker stack ps {stack}` for the failing tasks.",
    )


def ensure_network(client: docker.DockerClient, name: str) -> None:
    """An attachable overlay network shared by the proxy and every app's main service."""
    if client.networks.list(names=[name]):
        return
    try:
        client.networks.create(
            name, driver="overlay", attachable=True, labels={"dev.commonshelf.network": "apps"}
        )
    except docker.errors.APIError as exc:
        raise DeployError(
            f"Cannot create the overlay network {name}: {exc.explanation}",
            "check that this engine is a Swarm manager (`docker info`).",
        ) from exc


def task_containers(client: docker.DockerClient, service: str) -> list[Any]:
    """The running containers of a service's tasks; one that goes away meanwhile is skipped."""
    found = []
    label = {"label": f"com.docker.swarm.service.name={service}"}
    for summary in client.containers.list(sparse=True, filters=label):
        try:
            found.append(client.containers.get(summary.id))
        except docker.errors.NotFound:
            continue
    return found
