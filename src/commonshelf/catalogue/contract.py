"""The runtime contract: what one released version of an app promises, in one typed model.

The release job writes it into `catalog.json`; the standard matrix (CI) and the
installation agent read it from there and nowhere else, so what CI vetted is what
installations run. Models are `msgspec` Structs: decoding checks every type and names
the first wrong field by its path (`$.apps[...].versions[...].runtime.main.port`), the
JSON Schema `shared/schemas/catalog.schema.json` is generated from these same classes
(`catalogue.schema`), and the agent pays no reflection cost on small machines.
(Dataclasses would need a hand-written decoder; pydantic is ten times the size for
the same checks.)
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Literal

import msgspec

from commonshelf.platform.errors import CommonshelfError

PINNED = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


def is_pinned(image: str) -> bool:
    """`image` names its content by digest (REPOSITORY@sha256:<64 hex>)."""
    return bool(PINNED.match(image))


class ServiceImage(msgspec.Struct, frozen=True, kw_only=True):
    """A service's image, pinned by digest in the project's registry."""

    image: str  # REGISTRY/REPOSITORY@sha256:…
    digest: str


class MainService(msgspec.Struct, frozen=True, kw_only=True):
    """The service the installation's proxy routes the app's hostname to."""

    service: str
    port: int
    health: str  # HTTP path that answers 200 when the app is healthy
    timeout: int = 120  # seconds the app may take to become healthy


class DataVolume(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A named volume that holds user data: never removed by an update or a removal.

    (Defaults are omitted, so entries released before a field existed keep their bytes.)"""

    volume: str
    service: str
    path: str
    description: str = ""
    # one task at a time (a database): its service updates stop-first, with downtime
    exclusive: bool = False


class BackupHooks(msgspec.Struct, frozen=True, kw_only=True):
    """Commands (run in `service`) that make the volumes a consistent backup and load it back."""

    service: str
    pre: tuple[str, ...] = ()
    post: tuple[str, ...] = ()
    restore: tuple[str, ...] = ()


_SECRET_ALPHABET = string.ascii_letters + string.digits


class SecretSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A secret the installation generates at install time and hands over as a Swarm secret."""

    description: str
    length: int = 32

    def generate(self) -> str:
        """A new random value: letters and digits only, safe in URLs, config files and
        command lines alike (no quoting, no leading dash)."""
        return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(self.length))


class Setting(msgspec.Struct, frozen=True, kw_only=True):
    """A setting an operator may change (`install --set KEY=VALUE`), typed by its default."""

    default: str | int | float | bool
    description: str
    pattern: str | None = None  # a regular expression a text value must match in full
    choices: tuple[str | int | float | bool, ...] = ()  # the only values allowed, if any

    def parse(self, name: str, text: str) -> str | int | float | bool:
        """`text` as a value of this setting's type, or a one-line error saying what fits."""
        kind = type(self.default)
        try:
            if kind is bool:
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError(text)
                return lowered in ("true", "yes", "1")
            value = kind(text)
        except ValueError:
            noun = {"bool": "true or false", "int": "whole number", "float": "number"}.get(
                kind.__name__, "text"
            )
            raise CommonshelfError(
                f"Setting {name}={text!r} is not a {noun}.",
                f"give {name} a {noun} like its default {self.text()}.",
            ) from None
        if self.choices and value not in self.choices:
            allowed = ", ".join(self.text(choice) for choice in self.choices)
            raise CommonshelfError(
                f"Setting {name}={text!r} is not one of {allowed}.",
                f"give {name} one of {allowed}.",
            )
        if self.pattern is not None and re.fullmatch(self.pattern, str(value)) is None:
            raise CommonshelfError(
                f"Setting {name}={text!r} does not have the form {self.pattern}.",
                f"give {name} a value like its default {self.text()}.",
            )
        return value

    def text(self, value: str | int | float | bool | None = None) -> str:
        """A value as the app reads it from its environment (booleans as true/false)."""
        value = self.default if value is None else value
        return ("true" if value else "false") if isinstance(value, bool) else str(value)


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    """Whether moving to this version needs a human (a manual migration is never automatic)."""

    kind: Literal["none", "manual"] = "none"
    note: str = ""


class Resources(msgspec.Struct, frozen=True, kw_only=True):
    memory_mb: int | None = None
    disk_mb: int | None = None


class Runtime(msgspec.Struct, frozen=True, kw_only=True):
    """What an installation needs to run the version, and all it needs."""

    compose: str  # TUF target path of the pinned compose file
    services: dict[str, ServiceImage]
    main: MainService
    data: tuple[DataVolume, ...] = ()
    backup: BackupHooks | None = None
    secrets: dict[str, SecretSpec] = {}
    settings: dict[str, Setting] = {}
    migration: Migration = Migration()
    resources: Resources = Resources()
    architectures: tuple[str, ...] = ("amd64",)


class CheckOutcome(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["passed", "failed", "skipped", "n/a"]
    seconds: float = 0.0


class UpgradeProof(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The upgrade check as an installation would live it: probes through its proxy.

    (Defaults are omitted, so entries released before a field existed keep their bytes.)"""

    from_version: str
    probes: int
    failed: int
    seconds: float
    # services replaced stop-first because they own an exclusive data volume: their
    # restart is the only downtime allowed, measured from the first to the last failed probe
    stop_first: tuple[str, ...] = ()
    downtime: float = 0.0


class TargetRef(msgspec.Struct, frozen=True, kw_only=True):
    """A file published beside the catalogue as a TUF target: fetch `path` through TUF
    (`commonshelf sbom APP`), which checks its length and hash against signed metadata."""

    path: str
    sha256: str
    length: int


class Finding(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One scan finding named well enough to act on (a blocking or a waived one)."""

    kind: Literal["vulnerability", "secret", "misconfiguration"]
    id: str
    severity: str
    service: str = ""
    package: str = ""  # vulnerabilities: the installed package
    installed: str = ""
    fixed: str = ""  # the package version that fixes it ("" when no fix exists)
    where: str = ""  # secrets and misconfigurations: the file (and line)


class Waived(msgspec.Struct, frozen=True, kw_only=True):
    """A finding a recipe waived in `.trivyignore.yaml`, until `expires`."""

    id: str
    expires: str
    statement: str = ""


class ScanSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What the scan gate saw: counts, what blocked, what was waived, and with which DB.

    (`db_digest` is the OCI digest of the vulnerability DB artifact the scan pulled from the
    registry; `db_built` its build time. Empty on versions released before they existed.)"""

    counts: dict[str, int] = {}
    fail_on: str = "CRITICAL"
    summary: str = ""
    vuln_db: str = ""
    blocking: tuple[Finding, ...] = ()
    waived: tuple[Waived, ...] = ()
    trivy_version: str = ""
    db_digest: str = ""
    db_built: str = ""
    sboms: dict[str, TargetRef] = {}  # service -> its CycloneDX SBOM


class TestSummary(msgspec.Struct, frozen=True, kw_only=True):
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    summary: str = ""


class Vetting(msgspec.Struct, frozen=True, kw_only=True):
    """What CI proved about the version before it was released."""

    level: int
    checks: dict[str, CheckOutcome] = {}
    upgrade: UpgradeProof | None = None  # None for a first release
    tests: TestSummary = TestSummary()
    scan: ScanSummary = ScanSummary()


Channel = Literal["testing", "stable"]
CHANNELS: tuple[Channel, ...] = ("stable", "testing")


class VersionEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One released version: where it came from, what it runs, what CI proved.

    `channel`: a new version lands in "testing"; `invoke promote` moves it to "stable" and
    records when (`promoted`). Versions released before channels existed read as stable
    (the default), with no promotion time."""

    released: str
    commit: str
    content_hash: str
    runtime: Runtime
    vetting: Vetting
    changes: str = ""
    rebuilt: str = ""  # when it was rebuilt from its commit on another publishing host
    revoked: str = ""  # why the publisher withdrew it; installations never install it
    channel: Channel = "stable"
    promoted: str = ""  # when it moved from testing to stable ("" before channels existed)


class Advisory(msgspec.Struct, frozen=True, kw_only=True):
    """A vulnerability found in released versions after their release (`invoke rescan`).

    `affected` lists the released versions whose images carry it; `fixed_in` is the oldest
    released version newer than all of them that does not ("" while none does), which an
    installation's update prefers. `package_fixed` is the package version that fixes it."""

    id: str
    severity: str
    package: str
    affected: tuple[str, ...]
    fixed_in: str = ""
    package_fixed: str = ""
    title: str = ""
    found: str = ""  # when a rescan first reported it


class AppEntry(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    description: str
    category: str
    versions: dict[str, VersionEntry] = {}
    advisories: tuple[Advisory, ...] = ()

    def advisories_for(self, version: str) -> tuple[Advisory, ...]:
        """The advisories that name `version` as affected, most severe first."""
        order = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
        found = [a for a in self.advisories if version in a.affected]
        return tuple(
            sorted(
                found, key=lambda a: (order.index(a.severity) if a.severity in order else 9, a.id)
            )
        )


class PlatformComponent(msgspec.Struct, frozen=True, kw_only=True):
    """A piece of the installation itself (the proxy), pinned like an app's image."""

    version: str
    image: str
    digest: str
    compose: str
