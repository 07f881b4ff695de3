"""What an export archive holds and promises: its manifest, its limits, its error.

Shared by the writer (`archive`) and the defensive reader (`archive_read`).
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import PurePosixPath

import msgspec

from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.loaders import KiB, Limits, MiB

EXPORT_FORMAT = 1
MANIFEST = "export.json"
GiB = 1024 * MiB
# export.json: three strings, and two per app; 1 MiB holds thousands of apps.
MANIFEST_LIMITS = Limits("export manifest", 1 * MiB, 8, 50_000, 4 * KiB)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")  # an app name or a backup id
_TOP_FILES = frozenset({MANIFEST, "config.json", "history.jsonl"})
_TOP_DIRS = frozenset({"tuf", "apps", "policy", "secrets", "backups"})
_TUF_FILES = frozenset({"pinned-root.json", "subscription.json"})


class ExportError(CommonshelfError):
    """An export could not be written, or an archive was refused; nothing was changed."""


class ExportedApp(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    backup: str  # folder inside the archive (and the home): backups/APP/<id>


class ExportManifest(msgspec.Struct, frozen=True, kw_only=True):
    """export.json, the archive's first member: what the archive brings back."""

    format: int
    created: str
    agent: str  # the Commonshelf version that wrote it
    apps: dict[str, ExportedApp]


@dataclass(frozen=True)
class ArchiveLimits:
    """How much of an export archive `read_export` reads before refusing it."""

    max_archive: int = 64 * GiB  # compressed bytes, from stat
    max_total: int = 64 * GiB  # uncompressed bytes, counted as they are read
    max_members: int = 100_000
    max_depth: int = 32  # components of a member's name
    max_name: int = 1024  # bytes of a member's name (each component at most 255)


def size_text(count: int) -> str:
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if count >= unit and count % unit == 0:
            return f"{count // unit} {name}"
    return f"{count} bytes"


def shown(name: str) -> str:
    """A name from the archive for a message: quoted, escaped, shortened."""
    text = repr(name)
    return text if len(text) <= 100 else text[:97] + "..."


def manifest_problem(manifest: ExportManifest) -> str:
    """What is wrong with a manifest's app names and backup folders ('' when nothing).

    The caller turns these into paths, so each is one plain component where it belongs."""
    for app, entry in sorted(manifest.apps.items()):
        parts = PurePosixPath(entry.backup).parts
        if not _NAME.match(app):
            return f"the app name {shown(app)} is not a plain name"
        if len(parts) != 3 or parts[:2] != ("backups", app) or not _NAME.match(parts[2]):
            return f"the backup folder {shown(entry.backup)} of {app} is not backups/{app}/<id>"
    return ""


def member_mode(name: str, mode: int, folder: bool) -> int:
    """The permissions a member gets: secrets 0600 in 0700 folders, others at most 0777."""
    if name == "secrets" or name.startswith("secrets/"):
        return 0o700 if folder else 0o600
    return stat.S_IMODE(mode) & 0o777


def allowed_member(parts: list[str], folder: bool) -> bool:
    """Whether a member lies where an export puts things (tuf/targets/, a cache, not)."""
    top = parts[0]
    if len(parts) == 1:
        return top in _TOP_DIRS if folder else top in _TOP_FILES
    if top != "tuf":
        return top in _TOP_DIRS
    if parts[1] == "metadata":
        return True
    return len(parts) == 2 and not folder and parts[1] in _TUF_FILES
