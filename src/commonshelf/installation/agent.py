"""The installation agent: follow a signed catalogue and run its apps on Docker Swarm.

An installation pins the catalogue's TUF root at `init` and from then on reads
only verified targets: the catalogue, each version's compose file and the
proxy's. Each version's runtime contract (`catalogue.contract.Runtime`) says what
to run; the `Deployer` runs it. A catalogue that fails verification stops
everything before any stack is touched.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import docker
import msgspec
from tuf.api.metadata import Metadata, Targets
from tuf.api.serialization import DeserializationError

from commonshelf.catalogue.catalog import FULL_TARGET, Catalog, channel_target
from commonshelf.catalogue.contract import Channel, Runtime
from commonshelf.installation import choice, journal, updates
from commonshelf.installation.admission import check_architecture, validated_settings
from commonshelf.installation.deployer import Deployer
from commonshelf.installation.lock import agent_lock
from commonshelf.installation.render import PROXY, render_app
from commonshelf.installation.state import (
    InstallationConfig,
    Installed,
    installed_apps,
    read_record,
    write_record,
)
from commonshelf.installation.status import AppStatus, statuses
from commonshelf.installation.subscription import Subscription
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import DeployError
from commonshelf.platform.loaders import COMPOSE, load_yaml_bytes

DEFAULT_HOME = Path("/var/lib/commonshelf/agent")
CATALOG_TARGET = FULL_TARGET  # what a repository published before channels offers

P = ParamSpec("P")
R = TypeVar("R")


def locked(command: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run an Agent method that changes the installation under its lock (re-entrant)."""

    def wrap(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            agent = args[0]
            if not isinstance(agent, Agent):
                raise TypeError("locked() wraps Agent methods")
            with agent.holding(command):
                return method(*args, **kwargs)

        return run

    return wrap


class Agent:
    """One installation, rooted at its home folder.

    An Agent object serves one command: it refreshes the signed catalogue at most once
    (a poll with nothing new costs two small requests) and holds the installation's lock
    while it changes anything.
    """

    def __init__(self, home: Path = DEFAULT_HOME, client: docker.DockerClient | None = None):
        self.home = home
        self._client = client
        self._subscription: Subscription | None = None
        self._catalog: Catalog | None = None
        self._channel: Channel | None = None
        self.catalog_target = ""  # the target `catalog()` read: the channel's, or the full one
        self._holding = 0

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

    @contextlib.contextmanager
    def holding(self, command: str) -> Iterator[None]:
        """The installation's lock, taken once however deep the calls nest."""
        if self._holding:
            self._holding += 1
            try:
                yield
            finally:
                self._holding -= 1
            return
        if command not in ("init", "import"):
            self.config()  # not an installation yet: say how to start, write nothing
        with agent_lock(self.home, command):
            self._holding = 1
            try:
                yield
            finally:
                self._holding = 0

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
        if self._subscription is None:
            self._subscription = Subscription.open(self.home / "tuf")
        return self._subscription

    def local_node(self) -> str:
        """The Swarm node this agent's engine is: apps with data are pinned to it, since
        backups read volumes through this engine (docs/installation.md)."""
        return str((self.client.info().get("Swarm") or {}).get("NodeID") or "")

    def installed(self) -> dict[str, Installed]:
        self.config()  # says how to start when this is not an installation yet
        return installed_apps(self.home)

    def record(self, app: str) -> Installed:
        """The record of an installed app, or one line naming what is installed."""
        installed = self.installed()
        if app not in installed:
            names = ", ".join(sorted(installed)) or "none"
            raise DeployError(
                f"{app} is not installed here (installed: {names}); nothing was changed.",
                f"install it with `commonshelf install {app}`, or check the name.",
            )
        return installed[app]

    def channel(self) -> Channel:
        """The channel this installation follows (its config's; "stable" before it has one)."""
        if self._channel is None:
            self._channel = self.config().channel if self.config_path.exists() else "stable"
        return self._channel

    def follow(self, channel: Channel) -> None:
        """Read `channel`'s catalogue from now on (init and import set it before the config
        that names it is written)."""
        if channel != self._channel:
            self._channel, self._catalog = channel, None

    def catalog(self) -> Catalog:
        """The verified catalogue of the channel followed: refreshed once per Agent (TUF
        refresh + target check). A repository published before channels signs only the full
        catalogue: that one is read then, and `catalog_target` says so."""
        if self._catalog is None:
            subscription = self.subscription()
            subscription.refresh()
            target = channel_target(self.channel())
            if not _signs(subscription, target):
                target = CATALOG_TARGET
            self._catalog = Catalog.from_bytes(subscription.fetch(target), target)
            self.catalog_target = target
        return self._catalog

    def compose(self, target: str) -> dict[str, Any]:
        """A signed compose file, verified, then read through the bounded loader."""
        subscription = self.subscription()
        subscription.refresh()  # once per Agent: the metadata that signs it is fresh
        data = subscription.fetch(target)
        compose = load_yaml_bytes(data, target, COMPOSE)
        if not isinstance(compose, dict) or not isinstance(compose.get("services"), dict):
            raise DeployError(
                f"{target}: no 'services' mapping.",
                "republish the catalogue with `invoke release`.",
            )
        return compose

    def runtime(self, app: str, version: str) -> Runtime:
        return self.catalog().version(app, version)[1].runtime

    def note(self, event: journal.Event) -> journal.Event:
        """Add an event to the installation's history."""
        return journal.record(self.home, event)

    # ---- commands

    @locked("init")
    def init(
        self,
        repository: str,
        root: bytes,
        *,
        domain: str = "localhost",
        http_port: int = 80,
        namespace: str = "",
        min_level: int = 7,
        force: bool = False,
        channel: Channel = "stable",
    ) -> InstallationConfig:
        """Pin the root, check the repository, and deploy the installation's proxy."""
        config = InstallationConfig(
            repository=repository.rstrip("/"),
            domain=domain,
            http_port=http_port,
            namespace=namespace,
            min_level=min_level,
            data_node=self.local_node(),
            channel=channel,
        )
        if self.config_path.exists() and not force:
            current = self.config()
            if msgspec.structs.replace(current, data_node=config.data_node) != config:
                raise DeployError(
                    f"{self.home} is already an installation of {current.repository} "
                    f"(port {current.http_port}, domain {current.domain}, channel "
                    f"{current.channel}).",
                    "use --force to change it, or another --home.",
                )
        self.home.mkdir(parents=True, exist_ok=True)
        self._subscription = Subscription.create(
            self.home / "tuf", config.repository, root, force=force, verify=True
        )  # already refreshed
        self._catalog = None
        self.follow(channel)
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

    @locked("install")
    def install(
        self, app: str, version: str | None = None, settings: dict[str, str] | None = None
    ) -> tuple[Installed, bool]:
        """Deploy `app` at `version` with operator `settings` (KEY -> text, kept across
        updates); the record and whether anything changed. Without a version: the newest
        that may be installed here, or for an installed app what `update APP` would apply.
        An installed app moved to another version goes through the update procedure."""
        config = self.config()
        catalog = self.catalog()  # verified before anything is touched
        deployer = self.deployer(config)
        current = deployer.installed().get(app)
        if version is None and current is None:
            version = choice.newest_allowed(self, app)
        elif version is None and current is not None:  # what `update APP` would move it to
            [(_, _, decision)] = choice.plan(self, [app], automatic=False)
            version = decision.target or current.version
        version, entry = catalog.version(app, version)
        refusal = choice.refusal(self, app, version)
        if refusal:
            raise DeployError(f"{app} {version} {refusal}; nothing was changed.", refusal_fix(app))
        check_architecture(app, version, entry.runtime)
        chosen = {**(current.settings if current else {}), **(settings or {})}
        settled = validated_settings(app, entry.runtime, chosen)
        if current is not None and current.version != version:
            if settings:
                raise DeployError(
                    f"{app}: change its settings and its version in two steps; nothing was "
                    "changed.",
                    f"run `commonshelf install {app} --set …` first, then update it.",
                )
            outcome = updates.move(self, app, version, why="install")
            if outcome.outcome != "done":
                raise DeployError(outcome.sentence, f"see `commonshelf status` and `logs {app}`.")
            return self.record(app), True
        compose = self.compose(entry.runtime.compose)
        if current is not None and current.settings == settled:
            rendered = render_app(compose, entry.runtime, config, app, settled)
            if deployer.running(app, deployer.expected(app, rendered)):
                return current, False
        record = deployer.deploy_app(
            app,
            version,
            entry.runtime,
            compose,
            settled,
            previous=current.previous if current else "",
            backup=current.backup if current else "",
        )
        if current is None:
            sentence = f"Installed {app} {version} on {now_iso()}."
        elif current.settings != settled:
            sentence = f"Changed the settings of {app} {version} on {now_iso()}."
        else:  # the same version and settings, not running as recorded: deployed again
            sentence = f"Redeployed {app} {version} on {now_iso()}: it was not running as recorded."
        self.note(
            journal.Event(
                app=app, action="install", outcome="done", sentence=sentence, to_version=version
            )
        )
        return record, True

    def status(self) -> list[AppStatus]:
        """Each installed app, then the installation's own row when it has news."""
        return statuses(self)


def _signs(subscription: Subscription, target: str) -> bool:
    """Whether the targets metadata this refresh verified signs `target` (python-tuf keeps
    the verified copy as metadata/targets.json). Only which path to read depends on it: the
    bytes read are verified by `fetch` as always. Unreadable: True, so `fetch` names the
    problem."""
    try:
        signed = Metadata[Targets].from_file(str(subscription.metadata_dir / "targets.json"))
    except (OSError, ValueError, DeserializationError):
        return True
    return target in signed.signed.targets


def refusal_fix(app: str) -> str:
    return f"pick another version (`commonshelf info {app}`)."
