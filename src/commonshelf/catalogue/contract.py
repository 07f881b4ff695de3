"""The runtime contract: what one released version of an app promises, in one typed model.

The release job writes it into `catalog.json`; the standard matrix (CI) and the
installation agent read it from there and nowhere else, so what CI vetted is what
installations run. Models are `msgspec` Structs: decoding checks every type with the
path of the first wrong field (`$.apps.x.versions.1.0.0+1.runtime.main.port`), the
JSON Schema in `shared/schemas/catalog.schema.json` is generated from these same
classes, and the agent pays no reflection cost on small machines. (Dataclasses would
need a hand-written decoder; pydantic is ten times the size for the same checks.)
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from commonshelf.platform.errors import CommonshelfError

Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


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


class DataVolume(msgspec.Struct, frozen=True, kw_only=True):
    """A named volume that holds user data: never removed by an update or a removal."""

    volume: str
    service: str
    path: str
    description: str = ""


class BackupHooks(msgspec.Struct, frozen=True, kw_only=True):
    """Commands (run in `service`) that make the volumes a consistent backup and load it back."""

    service: str
    pre: tuple[str, ...] = ()
    post: tuple[str, ...] = ()
    restore: tuple[str, ...] = ()


class SecretSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A secret the installation generates at install time and hands over as a Swarm secret."""

    description: str
    length: int = 32


class Setting(msgspec.Struct, frozen=True, kw_only=True):
    """A setting an operator may change (`install --set KEY=VALUE`), typed by its default."""

    default: str | int | float | bool
    description: str

    def parse(self, name: str, text: str) -> str | int | float | bool:
        """`text` as a value of this setting's type, or a one-line error saying what fits."""
        kind = type(self.default)
        try:
            if kind is bool:
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError(text)
                return lowered in ("true", "yes", "1")
            return kind(text)
        except ValueError:
            raise CommonshelfError(
                f"Setting {name}={text!r} is not a {kind.__name__}.",
                f"give {name} a {kind.__name__} like its default {self.default!r}.",
            ) from None


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

    def check_pinned(self) -> None:
        """Every image is pinned by digest (an installation refuses to run anything else)."""
        for name, pinned in self.services.items():
            if "@" not in pinned.image or not DIGEST.match(pinned.image.rpartition("@")[2]):
                raise CommonshelfError(
                    f"service '{name}': image '{pinned.image}' is not pinned by digest.",
                    "republish the catalogue with `invoke release`, which pins every image.",
                )


class CheckOutcome(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["passed", "failed", "skipped", "n/a"]
    seconds: float = 0.0


class UpgradeProof(msgspec.Struct, frozen=True, kw_only=True):
    """The upgrade check as an installation would live it: probes through its proxy."""

    from_version: str
    probes: int
    failed: int
    seconds: float


class ScanSummary(msgspec.Struct, frozen=True, kw_only=True):
    counts: dict[str, int] = {}
    fail_on: str = "CRITICAL"
    summary: str = ""
    vuln_db: str = ""


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


class VersionEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One released version: where it came from, what it runs, what CI proved."""

    released: str
    commit: str
    content_hash: str
    runtime: Runtime
    vetting: Vetting
    changes: str = ""
    rebuilt: str = ""  # when it was rebuilt from its commit on another publishing host


class AppEntry(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    description: str
    category: str
    versions: dict[str, VersionEntry] = {}


class PlatformComponent(msgspec.Struct, frozen=True, kw_only=True):
    """A piece of the installation itself (the proxy), pinned like an app's image."""

    version: str
    image: str
    digest: str
    compose: str


def decode_error(origin: str, exc: msgspec.ValidationError) -> str:
    """msgspec's message ('Expected `int`, got `str` - at `$.apps…`') with the file first."""
    return f"{origin}: {exc}"
