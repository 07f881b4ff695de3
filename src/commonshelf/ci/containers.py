"""A recipe's stack as throw-away containers (testcontainers), for the recipe's own tests.

Fast and isolated: every service of compose.yml becomes a plain container on its own
networks, main port published on 127.0.0.1. The standard matrix does not use this:
it deploys the recipe the way installations do (`ci.swarm_stack`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from commonshelf.ci.contract_for import runtime_for
from commonshelf.ci.reaper import RUN_ID, run_labels
from commonshelf.installation.render import fill_settings, setting_values
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.wait import poll
from commonshelf.recipes.compose import (
    bind_mounts,
    engine_healthcheck,
    named_volumes,
    networks,
    service_environment,
    service_secrets,
)
from commonshelf.recipes.model import Recipe


@dataclass
class RunningService:
    name: str
    container: DockerContainer

    @property
    def docker_container(self) -> Any:
        return self.container.get_wrapped_container()


@dataclass
class RunningStack:
    """A recipe's services running for a test, main port published on loopback."""

    recipe: Recipe
    client: docker.DockerClient
    services: dict[str, RunningService]
    volumes: dict[str, str]  # compose volume name -> engine volume name
    networks: dict[str, Network] = field(default_factory=dict)  # compose name -> network
    secrets_dir: Path | None = None  # the generated secrets, as Swarm would mount them
    _port: int = field(default=0)

    def secret(self, name: str) -> str:
        """A secret generated for this stack (what the services read at /run/secrets/NAME)."""
        if self.secrets_dir is None:
            raise AssertionError(f"{self.recipe.name} declares no secrets")
        return (self.secrets_dir / name).read_text()

    @property
    def main(self) -> RunningService:
        return self.services[self.recipe.main.service]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def request(self, method: str, path: str = "/", **kwargs: Any) -> requests.Response:
        """Any HTTP method to the main service (as `SwarmApp.request` does in the matrix)."""
        kwargs.setdefault("timeout", 10)
        return requests.request(method, self.url(path), **kwargs)

    def get(self, path: str = "/", **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def exec(self, command: str | list[str], service: str | None = None, user: str = "") -> str:
        """Run a command in a service; raise with its output when it fails."""
        target = self.services[service or self.recipe.main.service].docker_container
        argv = ["sh", "-c", command] if isinstance(command, str) else command
        code, output = target.exec_run(argv, user=user)
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        if code != 0:
            raise AssertionError(f"`{command}` in {service or 'main'} exited {code}: {text}")
        return text

    def logs(self, service: str, lines: int = 30) -> str:
        raw = self.services[service].docker_container.logs(tail=lines)
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def _state(self, name: str) -> str:
        """'ready', 'exited', or the engine's health status ('starting', 'unhealthy')."""
        container = self.services[name].docker_container
        container.reload()
        state = container.attrs["State"]
        if state.get("Status") in ("exited", "dead"):
            return "exited"
        health = (state.get("Health") or {}).get("Status")
        if health is None:
            return "ready" if state.get("Status") == "running" else "starting"
        return "ready" if health == "healthy" else str(health)

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Wait until every service is running and healthy; fail with their last logs if not."""
        limit = timeout or self.recipe.main.timeout
        states: dict[str, str] = {}

        def settled() -> bool:
            """All services are ready, or one has exited (it will not become ready)."""
            nonlocal states
            states = {name: self._state(name) for name in self.services}
            return "exited" in states.values() or all(s == "ready" for s in states.values())

        poll(settled, limit, 0.5)
        waiting = sorted(n for n, s in states.items() if s != "ready")
        if waiting:
            report = "; ".join(
                f"{n} ({states[n]}): {self.logs(n, 10).strip()[-800:]}" for n in waiting
            )
            raise AssertionError(f"{self.recipe.name}: not healthy within {limit}s: {report}")
        self._port = int(self.main.container.get_exposed_port(self.recipe.main.port))

    def restart(self, service: str | None = None) -> None:
        """Restart one service (default: all), then wait for health again."""
        names = [service] if service else list(self.services)
        for name in names:
            self.services[name].docker_container.restart(timeout=20)
        self.wait_healthy()

    def stop(self, keep_volumes: bool = False) -> None:
        """Remove the containers and the networks; the volumes too unless `keep_volumes`."""
        for running in self.services.values():
            with contextlib.suppress(docker.errors.NotFound):
                running.container.stop(force=True, delete_volume=True)  # anonymous ones only
        if not keep_volumes:
            for volume in self.volumes.values():
                with contextlib.suppress(docker.errors.NotFound):
                    self.client.volumes.get(volume).remove(force=True)
        for network in self.networks.values():
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()
        self.networks = {}
        if self.secrets_dir is not None and not keep_volumes:
            shutil.rmtree(self.secrets_dir, ignore_errors=True)


def start_stack(
    recipe: Recipe,
    images: Mapping[str, str],
    client: docker.DockerClient,
    volumes: Mapping[str, str] | None = None,
    scope: str = "",
    secrets_dir: Path | None = None,
) -> RunningStack:
    """Start every service of the recipe's compose file; the caller must `stop()` it.

    `volumes` (compose name -> engine volume) reuses the volumes of an earlier stack,
    e.g. to start a new version on the data an old one wrote (pass the old stack's
    `secrets_dir` too). `scope` labels what is created, so one recipe's leftovers can be
    told from another's running alongside. Secrets are generated as an installation does
    and mounted where Swarm puts them; `${KEY}` settings take their defaults.
    """
    compose = recipe.compose()
    labels = run_labels(scope)
    runtime = runtime_for(recipe, {})
    settings = setting_values(runtime)
    stack = RunningStack(recipe=recipe, client=client, services={}, volumes=dict(volumes or {}))
    if secrets_dir is None and runtime.secrets:
        secrets_dir = Path(tempfile.mkdtemp(prefix=f"commonshelf-secrets-{recipe.name}-"))
        for name, secret in runtime.secrets.items():
            (secrets_dir / name).write_text(secret.generate())
            (secrets_dir / name).chmod(0o444)  # as Swarm mounts them: root-owned, world-readable
    stack.secrets_dir = secrets_dir
    try:
        for network_name in sorted({n for s in compose["services"].values() for n in networks(s)}):
            stack.networks[network_name] = Network(docker_network_kw={"labels": labels}).create()
        for name, spec in compose["services"].items():
            joined = networks(spec)
            image = images.get(name) or spec.get("image")
            if not image:
                raise CommonshelfError(
                    f"{recipe.compose_path}: service '{name}' has no image.",
                    "build it (recipe.yml services) or pin an image.",
                )
            container = DockerContainer(
                str(image), network=stack.networks[joined[0]], network_aliases=[name]
            )
            for key, value in service_environment(spec.get("environment")).items():
                container.with_env(key, fill_settings(value, settings))
            for source, target in service_secrets(spec.get("secrets")):
                if secrets_dir is None or not (secrets_dir / source).is_file():
                    raise CommonshelfError(
                        f"{recipe.compose_path}: service '{name}' reads secret '{source}', "
                        "which recipe.yml does not declare.",
                        f"declare it under `secrets:` in {recipe.path / 'recipe.yml'}.",
                    )
                container.with_volume_mapping(str(secrets_dir / source), target, "ro")
            for volume, path in named_volumes(spec.get("volumes")):
                engine_name = stack.volumes.get(volume)
                if engine_name is None:
                    engine_name = f"cstest-{scope or RUN_ID + '-' + recipe.name}-{volume}"
                    client.volumes.create(engine_name, labels=labels)
                    stack.volumes[volume] = engine_name
                container.with_volume_mapping(engine_name, path, "rw")
            for source, target, mode in bind_mounts(spec.get("volumes")):
                container.with_volume_mapping(source, target, mode)
            if name == recipe.main.service:
                # Published on loopback only (the docker SDK takes (host_ip, port) tuples).
                container.ports[f"{recipe.main.port}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
            if spec.get("command"):
                container.with_command(spec["command"])
            run_kwargs: dict[str, Any] = {"labels": labels}
            if spec.get("user") is not None:
                run_kwargs["user"] = str(spec["user"])
            if spec.get("healthcheck") and not spec["healthcheck"].get("disable"):
                run_kwargs["healthcheck"] = engine_healthcheck(spec["healthcheck"])
            container.with_kwargs(**run_kwargs)
            container.start()
            stack.services[name] = RunningService(name, container)
            for other in joined[1:]:
                stack.networks[other].connect(container.get_wrapped_container().id, [name])
        stack.wait_healthy()
    except BaseException:
        stack.stop()
        raise
    return stack
