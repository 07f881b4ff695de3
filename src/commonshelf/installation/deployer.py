"""The Swarm side of an installation: its proxy, its apps' stacks, their secrets and routes.

Given a version's contract and compose file (already verified by the caller), the
deployer renders the stack, generates the app's secrets on first install (mode
0600 in the installation's home, handed over as Swarm secrets), deploys with
`docker stack deploy`, waits until every service runs its pinned image healthy,
and routes `APP.DOMAIN` to the main service through the proxy. The agent drives it
with verified catalogue entries; the standard matrix drives the very same code with
a candidate's contract, in a namespace of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
import yaml

from commonshelf.catalogue.contract import Runtime
from commonshelf.installation import swarm
from commonshelf.installation.guard import refuse_host_control
from commonshelf.installation.render import PROXY, render_app, render_proxy, secret_name
from commonshelf.installation.state import (
    InstallationConfig,
    Installed,
    installed_apps,
    write_record,
)
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import DeployError
from commonshelf.platform.fsutil import write_bytes_atomic, write_text_atomic
from commonshelf.platform.wait import poll

STACK_LABEL = "com.docker.stack.namespace"
SECRET_LABEL = "org.commonshelf.secret-sha256"  # which value a Swarm secret was made from
MIN_SECRET_LENGTH = 16
STEADY = 20  # answers in a row (about a second) before an app counts as served


class Deployer:
    """The stacks of one installation (home folder + configuration) on one engine."""

    def __init__(self, client: docker.DockerClient, home: Path, config: InstallationConfig):
        self.client = client
        self.home = home
        self.config = config

    # ---- state

    @property
    def routes_dir(self) -> Path:
        return self.home / "proxy"

    def record_path(self, app: str) -> Path:
        return self.home / "apps" / f"{app}.json"

    def installed(self) -> dict[str, Installed]:
        return installed_apps(self.home)

    # ---- the proxy

    def deploy_proxy(self, compose: dict[str, Any], image: str, timeout: float = 120) -> None:
        config = self.config
        swarm.ensure_network(self.client, config.network)
        self.write_routes()
        rendered = render_proxy(compose, image, config, self.routes_dir)
        path = self.home / "stacks" / f"{config.proxy_stack}.yml"
        write_text_atomic(path, yaml.safe_dump(rendered, sort_keys=False))
        swarm.deploy(config.proxy_stack, path)
        swarm.wait_converged(
            self.client,
            config.proxy_stack,
            {f"{config.proxy_stack}_{PROXY}": rendered["services"][PROXY]["image"]},
            timeout=timeout,
        )

    def write_routes(self, extra: Installed | None = None, without: str = "") -> bool:
        """Rewrite the proxy's routes; whether they changed (only then is a reload needed)."""
        apps = self.installed()
        if extra is not None:
            apps[extra.app] = extra
        apps.pop(without, None)
        lines = [
            f"{self.config.hostname(a.app)} {a.stack}_{a.main_service}:{a.main_port};\n"
            for a in sorted(apps.values(), key=lambda a: a.app)
        ]
        path = self.routes_dir / "routes.map"
        text = "".join(lines)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return False
        write_text_atomic(path, text)
        return True

    def reload_proxy(self) -> None:
        service = f"{self.config.proxy_stack}_{PROXY}"
        containers = swarm.task_containers(self.client, service)
        if not containers:
            raise DeployError(
                f"The proxy ({service}) is not running.",
                "run `commonshelf init` again to redeploy it.",
            )
        for container in containers:
            code, output = container.exec_run(["nginx", "-s", "reload"])
            if code != 0:
                raise DeployError(
                    f"The proxy refused its new routes: {output.decode().strip()}",
                    f"check {self.routes_dir / 'routes.map'}.",
                )

    def get(self, app: str, path: str = "/", timeout: float = 10) -> requests.Response:
        """GET `path` of `app` through this installation's proxy, as a browser would."""
        return requests.get(
            f"http://127.0.0.1:{self.config.http_port}{path}",
            headers={"Host": self.config.hostname(app)},
            timeout=timeout,
            allow_redirects=False,
        )

    # ---- apps

    def ensure_secrets(self, app: str, runtime: Runtime) -> None:
        """Generate each secret once (kept 0600 in the home) and hand it to Swarm.

        Checked before anything is deployed: a secret file that was emptied or mangled, or a
        Swarm secret that holds another value than the file, stops the install with one line
        (an app started with the wrong database password would fail, or worse, half-start).
        """
        stack = self.config.stack(app)
        folder = self.home / "secrets" / app
        for name, spec in runtime.secrets.items():
            path = folder / name
            if not path.exists():
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                write_bytes_atomic(path, spec.generate().encode(), 0o600)
            value = path.read_bytes()
            if len(value) < MIN_SECRET_LENGTH or not value.isascii() or not value.isalnum():
                raise DeployError(
                    f"{path}: the secret {name} of {app} is not a generated secret "
                    f"(empty, shorter than {MIN_SECRET_LENGTH} or not letters and digits); "
                    "nothing was deployed.",
                    f"restore the file from a backup of {self.home}, or, for an app that never "
                    "ran with it, delete the file to generate a new one.",
                )
            fingerprint = hashlib.sha256(value).hexdigest()
            swarm_name = secret_name(stack, name)
            existing = self.client.secrets.list(filters={"name": swarm_name})
            existing = [s for s in existing if s.name == swarm_name]
            if existing:
                held = (existing[0].attrs.get("Spec", {}).get("Labels") or {}).get(SECRET_LABEL)
                if held is not None and held != fingerprint:
                    raise DeployError(
                        f"Swarm secret {swarm_name} holds another value than {path}; "
                        "nothing was deployed.",
                        f"restore {path} from a backup of {self.home}, or remove the app's stack "
                        f"and `docker secret rm {swarm_name}` to hand over the file's value.",
                    )
                continue
            try:
                self.client.secrets.create(
                    name=swarm_name,
                    data=value,
                    labels={STACK_LABEL: stack, SECRET_LABEL: fingerprint},
                )
            except docker.errors.APIError as exc:
                raise DeployError(
                    f"Cannot hand the secret {name} of {app} to Swarm: {exc.explanation}",
                    "check that this engine is a Swarm manager (`docker info`).",
                ) from exc

    def render(
        self,
        app: str,
        runtime: Runtime,
        compose: dict[str, Any],
        settings: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The stack this installation would run, refused if it could control the host (a
        valid signature does not make a privileged container or the engine's socket safe)."""
        rendered = render_app(compose, runtime, self.config, app, settings)
        refuse_host_control(app, rendered)
        return rendered

    def deploy_app(
        self,
        app: str,
        version: str,
        runtime: Runtime,
        compose: dict[str, Any],
        settings: dict[str, str] | None = None,
        *,
        previous: str = "",
        backup: str = "",
    ) -> Installed:
        """Deploy (or move) `app` to `version` and wait until it serves; the new record
        (`previous` and `backup`: the version before the last update and its backup)."""
        stack = self.config.stack(app)
        rendered = self.render(app, runtime, compose, settings)
        self.ensure_secrets(app, runtime)
        path = self.home / "stacks" / f"{stack}.yml"
        write_text_atomic(path, yaml.safe_dump(rendered, sort_keys=False))
        swarm.ensure_network(self.client, self.config.network)
        swarm.deploy(stack, path)
        swarm.wait_converged(
            self.client, stack, self.expected(app, rendered), timeout=runtime.main.timeout + 90
        )
        record = Installed(
            app=app,
            version=version,
            stack=stack,
            url=self.config.url(app),
            images={name: spec["image"] for name, spec in rendered["services"].items()},
            main_service=runtime.main.service,
            main_port=runtime.main.port,
            installed_at=now_iso(),
            settings=dict(settings or {}),
            previous=previous,
            backup=backup,
        )
        if self.write_routes(record):
            self.reload_proxy()
        self.wait_served(app, runtime.main.health, timeout=30)
        if not self.running(app, self.expected(app, rendered)):  # crashed after starting
            raise DeployError(
                f"{app} {version} started, then a service stopped running.",
                f"see `docker stack ps {stack}` and the app's logs.",
            )
        write_record(self.record_path(app), record)
        return record

    def wait_served(self, app: str, path: str, timeout: float) -> None:
        """Wait until `path` answers 200 through the proxy STEADY times in a row: a reload
        takes effect as nginx replaces its workers, and for a moment after `nginx -s reload`
        returns the old worker (old routes) still takes some connections."""
        last = ""
        streak = 0

        def served() -> bool:
            nonlocal last, streak
            try:
                answer = self.get(app, path, timeout=5)
                last = f"HTTP {answer.status_code}"
                streak = streak + 1 if answer.status_code == 200 else 0
            except requests.RequestException as exc:
                last, streak = type(exc).__name__, 0
            return streak >= STEADY

        if not poll(served, timeout, 0.05):
            raise DeployError(
                f"{app} runs but GET {path} through the proxy answered {last} for {timeout:.0f} s.",
                f"check the proxy's routes in {self.routes_dir / 'routes.map'} and the app's logs.",
            )

    def expected(self, app: str, rendered: dict[str, Any]) -> dict[str, str]:
        stack = self.config.stack(app)
        return {f"{stack}_{name}": spec["image"] for name, spec in rendered["services"].items()}

    def running(self, app: str, expected: dict[str, str]) -> bool:
        """Every service of the app runs its expected image, healthy."""
        states = {
            s.name: s
            for s in map(
                swarm.service_state, swarm.stack_services(self.client, self.config.stack(app))
            )
        }
        return all(
            name in states and states[name].healthy and states[name].image == image
            for name, image in expected.items()
        )

    def container(self, app: str, service: str) -> Any:
        """A running task container of one service (the newest, during an update)."""
        name = f"{self.config.stack(app)}_{service}"
        found = swarm.task_containers(self.client, name)
        if not found:
            raise DeployError(
                f"{app}: service '{service}' has no running task.",
                f"see `docker service ps {name}`.",
            )
        return max(found, key=lambda c: str(c.attrs.get("Created", "")))

    def recent_logs(self, app: str, lines: int = 8) -> str:
        """The last log lines of each service's newest task container, running or not."""
        stack = self.config.stack(app)
        said = []
        for service in swarm.stack_services(self.client, stack):
            label = {"label": f"com.docker.swarm.service.name={service.name}"}
            containers = self.client.containers.list(all=True, filters=label)
            # newest first; a task Swarm just replaced may have said nothing yet
            for container in sorted(
                containers, key=lambda c: str(c.attrs.get("Created", "")), reverse=True
            ):
                with contextlib.suppress(docker.errors.APIError):
                    raw = container.logs(tail=lines).decode(errors="replace").strip()
                    if raw:
                        said.append(f"{service.name}: {' | '.join(raw.splitlines()[-lines:])}")
                        break
        return "; ".join(said)[-1500:]

    def exec(self, app: str, service: str, command: str | list[str], user: str = "") -> str:
        """Run a command in a running task of `service`; its output, or a DeployError."""
        argv = ["sh", "-c", command] if isinstance(command, str) else command
        code, output = self.container(app, service).exec_run(argv, user=user)
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        if code != 0:
            shown = command if isinstance(command, str) else " ".join(command)
            raise DeployError(
                f"`{shown}` in {app}/{service} exited {code}: {text.strip()[-800:]}",
                "read the app's logs (`docker service logs`).",
            )
        return text

    def restart(self, app: str, service: str | None = None, timeout: float = 180) -> None:
        """Replace the tasks of one service (default: every service) and wait for health."""
        stack = self.config.stack(app)
        services = swarm.stack_services(self.client, stack)
        for svc in services:
            if service is None or svc.name == f"{stack}_{service}":
                swarm.restart_service(self.client, svc, timeout)

    def remove_app(self, app: str, data: tuple[str, ...], keep_data: bool = True) -> list[str]:
        """Remove the app's stack, secrets and every volume but its data volumes (all of
        them with `keep_data=False`); the names of the volumes kept."""
        stack = self.config.stack(app)
        if self.write_routes(without=app):
            with contextlib.suppress(DeployError):  # the proxy may be gone already
                self.reload_proxy()
        swarm.remove(self.client, stack)
        kept = {f"{stack}_{volume}" for volume in data} if keep_data else set()
        for volume in self.client.volumes.list(filters={"label": f"{STACK_LABEL}={stack}"}):
            if volume.name not in kept:
                with contextlib.suppress(docker.errors.NotFound):
                    volume.remove(force=True)
        for secret in self.client.secrets.list(filters={"label": f"{STACK_LABEL}={stack}"}):
            with contextlib.suppress(docker.errors.NotFound):
                secret.remove()
        self.record_path(app).unlink(missing_ok=True)
        return sorted(kept)

    def wait_stack_gone(self, stack: str, timeout: float = 90) -> None:
        def gone() -> bool:
            label = {"label": f"{STACK_LABEL}={stack}"}
            return not self.client.containers.list(all=True, sparse=True, filters=label)

        if not poll(gone, timeout, 0.5):
            raise DeployError(
                f"The containers of {stack} were still there {timeout:.0f} s after removal.",
                f"see `docker ps -a --filter label={STACK_LABEL}={stack}`.",
            )
