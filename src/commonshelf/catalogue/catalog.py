"""The catalogue: which app versions exist, what each runs (by digest) and what CI proved.

`catalog.json` is written only by the release job and published as a TUF target;
installations read nothing about apps that is not in it. Versions are kept forever
(an installation may be several releases behind), so upgrades can be tested from,
and applied from, any published version. The models are in `catalogue.contract`.

`catalog.json` is the full record. Each channel is a view of it published beside it
(`channels/<channel>/catalog.json`, same model, same signatures): an installation follows
one (docs/design.md, "Channels").
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import semver

from commonshelf.catalogue.contract import (
    CHANNELS,
    Advisory,
    AppEntry,
    Channel,
    PlatformComponent,
    VersionEntry,
)
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.loaders import CATALOGUE, InputError, load_json_bytes

SCHEMA = 2
FULL_TARGET = "catalog.json"  # every version of every app: the record, and what old installs read


def channel_target(channel: Channel) -> str:
    """The TUF target path of a channel's catalogue."""
    return f"channels/{channel}/catalog.json"


def first_fix(affected: Iterable[str], released: Iterable[str]) -> str:
    """The oldest of `released` newer than every `affected` version and not affected itself
    ("" while none is): the version an advisory's `fixed_in` names."""
    hit = set(affected)
    newest = max(hit, key=semver.Version.parse)
    later = [
        v
        for v in released
        if v not in hit and semver.Version.parse(v) > semver.Version.parse(newest)
    ]
    return min(later, key=semver.Version.parse) if later else ""


class CatalogError(CommonshelfError):
    """catalog.json is unreadable or does not follow its schema."""


class Catalog(msgspec.Struct, kw_only=True):
    """The whole catalogue (`catalog.json`), schema `SCHEMA`."""

    schema: int = SCHEMA
    generated: str = ""
    commit: str = ""
    platform: dict[str, PlatformComponent] = {}
    apps: dict[str, AppEntry] = {}

    # ---- reading

    @classmethod
    def from_bytes(cls, data: bytes, origin: str = "catalog.json") -> Catalog:
        try:
            raw = load_json_bytes(data, origin, CATALOGUE)
        except InputError as exc:
            raise CatalogError(exc.what, exc.fix) from None
        found = raw.get("schema") if isinstance(raw, dict) else None
        if found != SCHEMA:
            raise CatalogError(
                f"{origin} has schema {found}, this Commonshelf reads schema {SCHEMA}.",
                "upgrade Commonshelf, or republish the catalogue with `invoke release`.",
            )
        try:
            return msgspec.convert(raw, cls)
        except msgspec.ValidationError as exc:
            raise CatalogError(f"{origin}: {exc}.", "republish it with `invoke release`.") from None

    @classmethod
    def load(cls, path: Path) -> Catalog:
        """The catalogue at `path`, or an empty one when nothing was released yet."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls()
        return cls.from_bytes(data, str(path))

    def to_bytes(self) -> bytes:
        """Canonical JSON: keys sorted, two-space indent, newline at the end."""
        builtins: Any = msgspec.to_builtins(self)
        return msgspec.json.format(msgspec.json.encode(builtins, order="sorted"), indent=2) + b"\n"

    # ---- queries

    def versions(self, app: str) -> dict[str, VersionEntry]:
        entry = self.apps.get(app)
        return dict(entry.versions) if entry else {}

    def version(self, app: str, version: str | None = None) -> tuple[str, VersionEntry]:
        """A published version of an app (the newest by semver when `version` is None)."""
        versions = self.versions(app)
        if not versions:
            known = ", ".join(sorted(self.apps)) or "none"
            raise CatalogError(
                f"No app '{app}' in the catalogue (apps: {known}).",
                "check the name with `commonshelf apps`.",
            )
        if version is None:
            version = max(versions, key=semver.Version.parse)
        if version not in versions:
            raise CatalogError(
                f"{app} has no published version {version} (published: "
                f"{', '.join(sorted(versions, key=semver.Version.parse))}).",
                "pick one of the published versions.",
            )
        return version, versions[version]

    def latest(self, app: str) -> str | None:
        versions = self.versions(app)
        return max(versions, key=semver.Version.parse) if versions else None

    def channel_view(self, channel: Channel) -> Catalog:
        """What an installation following `channel` reads. "testing" lists every version
        (stable ones included), "stable" only stable ones and leaves out apps with none.
        Revoked versions stay listed (marked), so installations running one see why they move
        away. An app's advisories keep the versions the view lists, and `fixed_in` names the
        first of those that fixes them (never a version this view hides)."""
        wanted = CHANNELS if channel == "testing" else (channel,)
        apps: dict[str, AppEntry] = {}
        for name, app in self.apps.items():
            versions = {v: e for v, e in app.versions.items() if e.channel in wanted}
            if len(versions) == len(app.versions):
                apps[name] = app
            elif versions:
                advisories = _advisories_within(app.advisories, versions)
                apps[name] = msgspec.structs.replace(app, versions=versions, advisories=advisories)
        return msgspec.structs.replace(self, apps=apps)

    # ---- writing (release job only)

    def add_version(
        self,
        app: str,
        title: str,
        description: str,
        category: str,
        version: str,
        entry: VersionEntry,
    ) -> None:
        current = self.apps.get(app)
        versions = dict(current.versions) if current else {}
        versions[version] = entry
        self.apps = {
            **self.apps,
            app: AppEntry(
                title=title,
                description=description,
                category=category,
                versions=versions,
                advisories=current.advisories if current else (),
            ),
        }


def _advisories_within(
    advisories: tuple[Advisory, ...], versions: dict[str, VersionEntry]
) -> tuple[Advisory, ...]:
    """The advisories as a view listing only `versions` tells them."""
    allowed = [v for v, e in versions.items() if not e.revoked]
    out = []
    for advisory in advisories:
        affected = tuple(v for v in advisory.affected if v in versions)
        if affected:
            fixed = first_fix(affected, allowed)
            out.append(msgspec.structs.replace(advisory, affected=affected, fixed_in=fixed))
    return tuple(out)


def _check_version(origin: str, app: str, version: str) -> None:
    if not semver.Version.is_valid(version):
        raise CatalogError(
            f"{origin}: {app} lists version '{version}', which is not <semver>+<upstream>.",
            "republish the catalogue with `invoke release`.",
        )


class ReleasedVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One version as a committed catalogue records it: enough to rebuild it from git, and
    what a rebuild keeps (its channel, when it was promoted, why it was revoked)."""

    app: str
    version: str
    commit: str
    content_hash: str
    released: str
    channel: Channel = "stable"
    promoted: str = ""
    revoked: str = ""


def released_records(data: bytes, origin: str) -> list[ReleasedVersion]:
    """(app, version, commit, content hash, released) of every version a catalogue lists,
    read from any schema so far: what rebuilding released versions from git needs."""
    try:
        raw = load_json_bytes(data, origin, CATALOGUE)
    except InputError as exc:
        raise CatalogError(exc.what, exc.fix) from None
    out = []
    apps = raw.get("apps", {}) if isinstance(raw, dict) else None
    if not isinstance(apps, dict):
        raise CatalogError(f"{origin}: 'apps' is not an object.", "restore catalog.json from git.")
    for app, entry in sorted(apps.items()):
        versions = entry.get("versions") if isinstance(entry, dict) else None
        if not isinstance(versions, dict):
            raise CatalogError(
                f"{origin}: apps.{app}.versions is not an object.", "restore catalog.json from git."
            )
        for version, meta in versions.items():
            _check_version(origin, str(app), str(version))
            if not isinstance(meta, dict):
                raise CatalogError(
                    f"{origin}: apps.{app}.versions.{version} is not an object.",
                    "restore catalog.json from git.",
                )
            channel = meta.get("channel", "stable")  # before channels: stable
            if channel not in CHANNELS:
                raise CatalogError(
                    f"{origin}: apps.{app}.versions.{version}.channel is {channel!r}, not one "
                    f"of {', '.join(CHANNELS)}.",
                    "restore catalog.json from git.",
                )
            out.append(
                ReleasedVersion(
                    app=str(app),
                    version=str(version),
                    commit=str(meta.get("commit", "")).removesuffix("-dirty"),
                    content_hash=str(meta.get("content_hash", "")),
                    released=str(meta.get("released", "")),
                    channel="testing" if channel == "testing" else "stable",
                    promoted=str(meta.get("promoted", "")),
                    revoked=str(meta.get("revoked", "")),
                )
            )
    return sorted(out, key=lambda r: (r.app, semver.Version.parse(r.version)))
