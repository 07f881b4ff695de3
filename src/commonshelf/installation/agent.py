"""The installation agent: follow a signed catalogue and run its apps on Docker Swarm.

An installation pins the catalogue's TUF root at `init` and from then on reads
only verified targets: the catalogue, each version's compose file and the
proxy's. It deploys them with `docker stack deploy`, images pinned by digest,
behind its own reverse proxy, and records what it runs in its home folder
(atomically, so a crash never leaves a half-written record). A catalogue that
fails verification stops everything before any stack is touched.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml

from commonshelf.catalogue.catalog import Catalog
from commonshelf.ci.evidence import now_iso
from commonshelf.installation import swarm
from commonshelf.installation.subscription import Subscription
from commonshelf.installation.volumes import archive_volume
from commonshelf.platform.errors import CommonshelfError, DeployError
from commonshelf.platform.fsutil import write_json_atomic, write_text_atomic

DEFAULT_HOME = Path("/var/lib/commonshelf/agent")
CATALOG_TARGET = "catalog.json"
PROXY = "proxy"
SNAPSHOTS_KEPT = 3


@dataclass(frozen=True)
class AgentConfig:
    repository: str
    domain: str = "localhost"
    http_port: int = 80
    namespace: str = ""  # prefix of every stack and network, so installations can coexist

    @property
    def proxy_stack(self) -> str:
        return f"{self.namespace}commonshelf"

    @property
    def network(self) -> str:
        return f"{self.namespace}commonshelf-apps"

    def stack(self, app: str) -> str:
        return f"{self.namespace}{app}"

    def hostname(self, app: str) -> str:
        return f"{app}.{self.domain}"

    def url(self, app: str) -> str:
        port = "" if self.http_port == 80 else f":{self.http_port}"
        return f"http://{self.hostname(app)}{port}/"


@dataclass(frozen=True)
class Installed:
    app: str
    version: str
    stack: str
    url: str
    images: dict[str, str]
    main_service: str
    main_port: int
    installed_at: str


@dataclass(frozen=True)
class AppStatus:
    app: str
    version: str
    latest: str | None
    url: str
    services: list[swarm.ServiceState]

    @property
    def healthy(self) -> bool:
        return bool(self.services) and all(s.healthy for s in self.services)


def _pinned(image: str, where: str) -> str:
    if "@sha256:" not in image:
        raise DeployError(
            f"{where}: image '{image}' is not pinned by digest; refusing to run it.",
            "republish the catalogue with `invoke release`, which pins every image.",
        )
    return image


def render_app(
    compose: dict[str, Any], entry: dict[str, Any], config: AgentConfig
) -> dict[str, Any]:
    """The recipe's compose file as this installation runs it: pinned, dnsrr, on the proxy net."""
    rendered = copy.deepcopy(compose)
    services: dict[str, Any] = rendered["services"]
    for name, spec in services.items():
        image = entry["services"].get(name, {}).get("image") or spec.get("image", "")
        spec["image"] = _pinned(str(image), f"service '{name}'")
        spec.setdefault("deploy", {})["endpoint_mode"] = "dnsrr"
        spec.pop("build", None)
    main = services[entry["main"]["service"]]
    networks = main.get("networks") or ["default"]
    if isinstance(networks, dict):
        networks = {**networks, "commonshelf-apps": None}
    else:
        networks = [*networks, "commonshelf-apps"]
    main["networks"] = networks
    rendered.setdefault("networks", {})["commonshelf-apps"] = {
        "external": True,
        "name": config.network,
    }
    return rendered


def render_proxy(
    compose: dict[str, Any], image: str, config: AgentConfig, routes_dir: Path
) -> dict[str, Any]:
    rendered = copy.deepcopy(compose)
    proxy = rendered["services"][PROXY]
    proxy["image"] = _pinned(image, "proxy")
    proxy["ports"] = [
        {"target": 8080, "published": config.http_port, "protocol": "tcp", "mode": "host"}
    ]
    proxy["volumes"] = [
        {
            "type": "bind",
            "source": str(routes_dir),
            "target": "/etc/commonshelf/proxy",
            "read_only": True,
        }
    ]
    rendered["networks"]["apps"]["name"] = config.network
    return rendered


class Agent:
    """One installation, rooted at its home folder."""

    def __init__(self, home: Path = DEFAULT_HOME, client: docker.DockerClient | None = None):
        self.home = home
        self._client = client

    # ---- state

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            from commonshelf.platform.environment import ensure
            from commonshelf.platform.settings import Settings

            self._client = ensure(
                Settings.load(), registry=False, swarm=True, commands=("docker", "dockerd")
            ).client
        return self._client

    @property
    def config_path(self) -> Path:
        return self.home / "config.json"

    @property
    def routes_dir(self) -> Path:
        return self.home / "proxy"

    def config(self) -> AgentConfig:
        try:
            return AgentConfig(**json.loads(self.config_path.read_text()))
        except FileNotFoundError:
            raise DeployError(
                f"{self.home} is not an installation yet.",
                "run `commonshelf init --repository URL --root ROOT.json`.",
            ) from None

    def subscription(self) -> Subscription:
        return Subscription.open(self.home / "tuf")

    def installed(self) -> dict[str, Installed]:
        apps = {}
        for path in sorted((self.home / "apps").glob("*.json")):
            data = json.loads(path.read_text())
            apps[data["app"]] = Installed(**data)
        return apps

    def catalog(self) -> Catalog:
        """The verified catalogue, fresh from the repository (TUF refresh + target check)."""
        subscription = self.subscription()
        subscription.refresh()
        return Catalog.from_bytes(subscription.fetch(CATALOG_TARGET), CATALOG_TARGET)

    # ---- commands

    def init(
        self,
        repository: str,
        root: bytes,
        *,
        domain: str = "localhost",
        http_port: int = 80,
        namespace: str = "",
        force: bool = False,
    ) -> AgentConfig:
        """Pin the root, check the repository, and deploy the installation's proxy."""
        config = AgentConfig(repository.rstrip("/"), domain, http_port, namespace)
        if self.config_path.exists() and not force:
            current = self.config()
            if current != config:
                raise DeployError(
                    f"{self.home} is already an installation of {current.repository} "
                    f"(port {current.http_port}, domain {current.domain}).",
                    "use --force to change it, or another --home.",
                )
        Subscription.create(self.home / "tuf", config.repository, root, force=force)
        catalog = self.catalog()  # the repository must verify before this becomes the config
        write_json_atomic(self.config_path, asdict(config))
        self.deploy_proxy(catalog, config)
        return config

    def deploy_proxy(self, catalog: Catalog, config: AgentConfig) -> None:
        platform = catalog.platform.get(PROXY)
        if not platform:
            raise DeployError(
                "The catalogue has no proxy component.", "republish it with `invoke release`."
            )
        compose = yaml.safe_load(self.subscription().fetch(platform["compose"]))
        swarm.ensure_network(self.client, config.network)
        self.write_routes(config)
        rendered = render_proxy(compose, platform["image"], config, self.routes_dir)
        path = self.home / "stacks" / f"{config.proxy_stack}.yml"
        write_text_atomic(path, yaml.safe_dump(rendered, sort_keys=False))
        swarm.deploy(config.proxy_stack, path)
        swarm.wait_converged(
            self.client,
            config.proxy_stack,
            {f"{config.proxy_stack}_{PROXY}": rendered["services"][PROXY]["image"]},
            timeout=120,
        )

    def write_routes(self, config: AgentConfig, extra: Installed | None = None) -> None:
        apps = self.installed()
        if extra is not None:
            apps[extra.app] = extra
        lines = [
            f"{config.hostname(a.app)} {a.stack}_{a.main_service}:{a.main_port};\n"
            for a in sorted(apps.values(), key=lambda a: a.app)
        ]
        write_text_atomic(self.routes_dir / "routes.map", "".join(lines))

    def reload_proxy(self, config: AgentConfig) -> None:
        service = f"{config.proxy_stack}_{PROXY}"
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

    def install(self, app: str, version: str | None = None) -> tuple[Installed, bool]:
        """Deploy `app` at `version` (default: newest); return the record and whether it changed."""
        config = self.config()
        catalog = self.catalog()  # verified before anything is touched
        version, entry = catalog.version(app, version)
        current = self.installed().get(app)
        stack = config.stack(app)
        compose = yaml.safe_load(self.subscription().fetch(entry["compose"]))
        rendered = render_app(compose, entry, config)
        expected = {f"{stack}_{name}": spec["image"] for name, spec in rendered["services"].items()}
        if current is not None and current.version == version and self._running(stack, expected):
            return current, False
        if current is not None and current.version != version:
            _, running_entry = catalog.version(app, current.version)
            self.snapshot(current, running_entry.get("data", []))
        path = self.home / "stacks" / f"{stack}.yml"
        write_text_atomic(path, yaml.safe_dump(rendered, sort_keys=False))
        swarm.ensure_network(self.client, config.network)
        swarm.deploy(stack, path)
        timeout = int(entry["main"].get("timeout", 120)) + 90
        swarm.wait_converged(self.client, stack, expected, timeout=timeout)
        record = Installed(
            app=app,
            version=version,
            stack=stack,
            url=config.url(app),
            images={name: spec["image"] for name, spec in rendered["services"].items()},
            main_service=entry["main"]["service"],
            main_port=int(entry["main"]["port"]),
            installed_at=now_iso(),
        )
        self.write_routes(config, record)
        self.reload_proxy(config)
        write_json_atomic(self.home / "apps" / f"{app}.json", asdict(record))
        return record, True

    def snapshot(self, record: Installed, data: list[dict[str, str]]) -> Path | None:
        """Copy every data volume of an installed app to a tar file before it is changed.

        Each volume is read through the engine's archive API (`volumes.archive_volume`); the
        snapshot folder appears only when every volume was copied. The newest
        SNAPSHOTS_KEPT snapshots of each app are kept.
        """
        if not data:
            return None
        root = self.home / "snapshots" / record.app
        final = root / f"{now_iso().replace(':', '')}-{record.version}"
        work = root / f".{final.name}.partial"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            for volume in data:
                archive_volume(
                    self.client,
                    record.images[volume["service"]],
                    f"{record.stack}_{volume['volume']}",
                    work / f"{volume['volume']}.tar",
                )
            work.rename(final)
        except (docker.errors.DockerException, OSError) as exc:
            shutil.rmtree(work, ignore_errors=True)
            raise DeployError(
                f"Could not snapshot the data of {record.app} before updating it "
                f"({exc}); nothing was changed.",
                "check free disk space in the installation's home.",
            ) from None
        for old in sorted(p for p in root.iterdir() if not p.name.startswith("."))[
            :-SNAPSHOTS_KEPT
        ]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def _running(self, stack: str, expected: dict[str, str]) -> bool:
        states = {
            s.name: s for s in map(swarm.service_state, swarm.stack_services(self.client, stack))
        }
        return all(
            name in states and states[name].healthy and states[name].image == image
            for name, image in expected.items()
        )

    def update(self, apps: list[str] | None = None) -> list[tuple[str, str, str]]:
        """Move installed apps to the newest published version: (app, from, to) for each change."""
        catalog = self.catalog()
        changes = []
        for app, current in sorted(self.installed().items()):
            if apps and app not in apps:
                continue
            latest = catalog.latest(app)
            if latest is None or latest == current.version:
                continue
            self.install(app, latest)
            changes.append((app, current.version, latest))
        return changes

    def status(self) -> list[AppStatus]:
        self.config()  # says how to start when this is not an installation yet
        try:
            catalog: Catalog | None = self.catalog()
        except CommonshelfError:  # status must work while the repository is unreachable
            catalog = None
        out = []
        for app, record in sorted(self.installed().items()):
            services = [
                swarm.service_state(s) for s in swarm.stack_services(self.client, record.stack)
            ]
            out.append(
                AppStatus(
                    app,
                    record.version,
                    catalog.latest(app) if catalog else None,
                    record.url,
                    services,
                )
            )
        return out
