"""The installation agent: follow a signed catalogue and run its apps on Docker Swarm.

An installation pins the catalogue's TUF root at `init` and from then on reads
only verified targets: the catalogue, each version's compose file and the
proxy's. Each version's runtime contract (`catalogue.contract.Runtime`) says what
to run; the `Deployer` runs it. A catalogue that fails verification stops
everything before any stack is touched.
"""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import Runtime
from commonshelf.installation import swarm
from commonshelf.installation.backup import back_up
from commonshelf.installation.deployer import Deployer
from commonshelf.installation.render import PROXY
from commonshelf.installation.state import (
    InstallationConfig,
    Installed,
    installed_apps,
    read_record,
    write_record,
)
from commonshelf.installation.subscription import Subscription
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import CommonshelfError, DeployError
from commonshelf.platform.loaders import COMPOSE, load_yaml_bytes

DEFAULT_HOME = Path("/var/lib/commonshelf/agent")
CATALOG_TARGET = "catalog.json"
SNAPSHOTS_KEPT = 3


def host_architecture() -> str:
    """This machine's architecture in the names recipes declare (amd64, arm64)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def check_architecture(app: str, version: str, runtime: Runtime) -> None:
    host = host_architecture()
    if host not in runtime.architectures:
        raise DeployError(
            f"{app} {version} runs on {', '.join(runtime.architectures)}, not on this "
            f"{host} machine; nothing was changed.",
            "pick another app, or run it on a machine of a supported architecture.",
        )


def validated_settings(app: str, runtime: Runtime, given: dict[str, str]) -> dict[str, str]:
    """The operator's settings, each known to the version and of its type, as text."""
    unknown = sorted(set(given) - set(runtime.settings))
    if unknown:
        known = ", ".join(sorted(runtime.settings)) or "none"
        raise DeployError(
            f"{app} has no setting {', '.join(unknown)} (settings: {known}).",
            f"see `commonshelf info {app}`, or drop the --set.",
        )
    return {
        name: runtime.settings[name].text(runtime.settings[name].parse(name, text))
        for name, text in sorted(given.items())
    }


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

    def config(self) -> InstallationConfig:
        if not self.config_path.exists():
            raise DeployError(
                f"{self.home} is not an installation yet.",
                "run `commonshelf init --repository URL --root ROOT.json`.",
            )
        return read_record(self.config_path, InstallationConfig)

    def deployer(self, config: InstallationConfig | None = None) -> Deployer:
        return Deployer(self.client, self.home, config or self.config())

    def subscription(self) -> Subscription:
        return Subscription.open(self.home / "tuf")

    def installed(self) -> dict[str, Installed]:
        self.config()  # says how to start when this is not an installation yet
        return installed_apps(self.home)

    def catalog(self) -> Catalog:
        """The verified catalogue, fresh from the repository (TUF refresh + target check)."""
        subscription = self.subscription()
        subscription.refresh()
        return Catalog.from_bytes(subscription.fetch(CATALOG_TARGET), CATALOG_TARGET)

    def compose(self, target: str) -> dict[str, Any]:
        """A signed compose file, verified, then read through the bounded loader."""
        data = self.subscription().fetch(target)
        compose = load_yaml_bytes(data, target, COMPOSE)
        if not isinstance(compose, dict) or not isinstance(compose.get("services"), dict):
            raise DeployError(
                f"{target}: no 'services' mapping.",
                "republish the catalogue with `invoke release`.",
            )
        return compose

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
    ) -> InstallationConfig:
        """Pin the root, check the repository, and deploy the installation's proxy."""
        config = InstallationConfig(
            repository=repository.rstrip("/"),
            domain=domain,
            http_port=http_port,
            namespace=namespace,
        )
        if self.config_path.exists() and not force:
            current = self.config()
            if current != config:
                raise DeployError(
                    f"{self.home} is already an installation of {current.repository} "
                    f"(port {current.http_port}, domain {current.domain}).",
                    "use --force to change it, or another --home.",
                )
        self.home.mkdir(parents=True, exist_ok=True)
        Subscription.create(self.home / "tuf", config.repository, root, force=force, verify=True)
        catalog = self.catalog()  # the repository must verify before this becomes the config
        write_record(self.config_path, config)
        self.deploy_proxy(catalog, config)
        return config

    def deploy_proxy(self, catalog: Catalog, config: InstallationConfig) -> None:
        platform = catalog.platform.get(PROXY)
        if platform is None:
            raise DeployError(
                "The catalogue has no proxy component.", "republish it with `invoke release`."
            )
        self.deployer(config).deploy_proxy(self.compose(platform.compose), platform.image)

    def install(
        self, app: str, version: str | None = None, settings: dict[str, str] | None = None
    ) -> tuple[Installed, bool]:
        """Deploy `app` at `version` (default: newest) with operator `settings` (KEY -> text,
        kept across updates); return the record and whether anything changed."""
        config = self.config()
        catalog = self.catalog()  # verified before anything is touched
        version, entry = catalog.version(app, version)
        check_architecture(app, version, entry.runtime)
        deployer = self.deployer(config)
        current = deployer.installed().get(app)
        compose = self.compose(entry.runtime.compose)
        chosen = {**(current.settings if current else {}), **(settings or {})}
        settings = validated_settings(app, entry.runtime, chosen)
        if current is not None and current.version == version and current.settings == settings:
            from commonshelf.installation.render import render_app

            rendered = render_app(compose, entry.runtime, config, app, settings)
            if deployer.running(app, deployer.expected(app, rendered)):
                return current, False
        if current is not None and current.version != version:
            _, running_entry = catalog.version(app, current.version)
            self.snapshot(deployer, current, running_entry.runtime)
        record = deployer.deploy_app(app, version, entry.runtime, compose, settings)
        return record, True

    def snapshot(self, deployer: Deployer, record: Installed, runtime: Runtime) -> Path | None:
        """Back up the app (its recipe's hooks, then every data volume) before it changes.

        The snapshot folder appears only when complete; the newest SNAPSHOTS_KEPT of
        each app are kept.
        """
        if not runtime.data:
            return None
        root = self.home / "snapshots" / record.app
        final = root / f"{now_iso().replace(':', '')}-{record.version}"
        back_up(deployer, record, runtime, final)
        kept = sorted(p for p in root.iterdir() if not p.name.startswith("."))
        for old in kept[:-SNAPSHOTS_KEPT]:
            shutil.rmtree(old, ignore_errors=True)
        return final

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
