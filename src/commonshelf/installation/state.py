"""An installation's own records: its configuration and the apps it runs.

Kept as small JSON files in the installation's home, written atomically and read
through the bounded loader with typed decoding, so a file cut short by a crash or
edited by hand is one clear error, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec

from commonshelf.catalogue.contract import Channel
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.fsutil import write_bytes_atomic
from commonshelf.platform.loaders import STATE, load_json

T = TypeVar("T")


class StateError(CommonshelfError):
    """A record of the installation is unreadable."""


class InstallationConfig(msgspec.Struct, frozen=True, kw_only=True):
    repository: str
    domain: str = "localhost"
    http_port: int = 80
    namespace: str = ""  # prefix of every stack and network, so installations can coexist
    # a recipe's published (non-HTTP) port -> the host port this installation uses for it:
    # an operator moves a port another program holds; a rehearsal takes free ones
    host_ports: dict[int, int] = {}
    min_level: int = 7  # the lowest vetting level this installation accepts (7 is the top)
    # the Swarm node id of the engine the agent drives: services holding data (and the proxy)
    # are pinned to it, since backups read volumes through that engine; "" pins nothing
    data_node: str = ""
    # the catalogue it follows: "stable" (promoted versions only) or "testing" (every new
    # version); configs written before channels existed read as stable
    channel: Channel = "stable"

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


class Installed(msgspec.Struct, frozen=True, kw_only=True):
    """What the installation runs for one app."""

    app: str
    version: str
    stack: str
    url: str
    images: dict[str, str]
    main_service: str
    main_port: int
    installed_at: str
    settings: dict[str, str] = {}
    previous: str = ""  # the version it ran before its last update (what `rollback` returns to)
    backup: str = ""  # the backup taken before its last update


def installed_apps(home: Path) -> dict[str, Installed]:
    """The records of the apps an installation runs, by app name."""
    apps = {}
    for path in sorted((home / "apps").glob("*.json")):
        record = read_record(path, Installed)
        apps[record.app] = record
    return apps


def read_record(path: Path, kind: type[T]) -> T:
    """A record of type `kind`, or a StateError naming the file and what to do."""
    try:
        return msgspec.convert(load_json(path, STATE), kind)
    except msgspec.ValidationError as exc:
        raise StateError(
            f"{path}: {exc}.",
            f"restore {path.name} from a backup, or remove it and run the command that "
            "wrote it again.",
        ) from None


def write_record(path: Path, record: msgspec.Struct, mode: int = 0o644) -> None:
    body = msgspec.json.format(msgspec.json.encode(record, order="sorted"), indent=2)
    write_bytes_atomic(path, body + b"\n", mode)
