"""The catalogue: which app versions exist, which images they run (by digest), what CI proved.

`catalog.json` is written only by the release job and published as a TUF
target; installations read nothing about apps that is not in it. Versions are
kept forever (an installation may be several releases behind), so upgrades can
be tested from, and applied from, any published version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import semver

from commonshelf.platform.errors import CommonshelfError

SCHEMA = 1


class CatalogError(CommonshelfError):
    """catalog.json is unreadable or does not follow its schema."""


@dataclass
class Catalog:
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    platform: dict[str, dict[str, Any]] = field(default_factory=dict)
    generated: str = ""
    commit: str = ""

    # ---- reading

    @classmethod
    def from_bytes(cls, data: bytes, origin: str = "catalog.json") -> Catalog:
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise CatalogError(
                f"{origin} is not JSON ({exc}).", "republish it with `invoke release`."
            ) from None
        if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
            raise CatalogError(
                f"{origin} has schema {raw.get('schema') if isinstance(raw, dict) else '?'}, "
                f"this Commonshelf reads schema {SCHEMA}.",
                "upgrade Commonshelf, or republish the catalogue.",
            )
        apps = raw.get("apps")
        platform = raw.get("platform", {})
        if not isinstance(apps, dict) or not isinstance(platform, dict):
            raise CatalogError(
                f"{origin}: 'apps' and 'platform' must be objects.",
                "republish it with `invoke release`.",
            )
        return cls(
            apps=apps,
            platform=platform,
            generated=str(raw.get("generated", "")),
            commit=str(raw.get("commit", "")),
        )

    @classmethod
    def load(cls, path: Path) -> Catalog:
        """The catalogue at `path`, or an empty one when nothing was released yet."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls()
        return cls.from_bytes(data, str(path))

    def to_bytes(self) -> bytes:
        body = {
            "schema": SCHEMA,
            "generated": self.generated,
            "commit": self.commit,
            "platform": self.platform,
            "apps": self.apps,
        }
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()

    # ---- queries

    def versions(self, app: str) -> dict[str, dict[str, Any]]:
        entry = self.apps.get(app)
        return dict(entry.get("versions", {})) if entry else {}

    def version(self, app: str, version: str | None = None) -> tuple[str, dict[str, Any]]:
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

    # ---- writing (release job only)

    def add_version(
        self, app: str, meta: dict[str, Any], version: str, entry: dict[str, Any]
    ) -> None:
        app_entry = self.apps.setdefault(app, {"versions": {}})
        app_entry.update(meta)
        app_entry.setdefault("versions", {})[version] = entry
