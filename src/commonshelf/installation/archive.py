"""Export archives: one gzip-compressed tar of an installation, to bring it back elsewhere.

`commonshelf export FILE` writes the installation's records (config.json, apps/,
policy/, history.jsonl), its generated secrets (0600 in 0700 folders), the trust
metadata it pinned and verified (tuf/pinned-root.json, tuf/subscription.json,
tuf/metadata/) and one backup folder per app (backups/APP/<id>/), after `export.json`,
the manifest that comes first. Caches and what the agent derives or holds while it
runs (tuf/targets/, stacks/, proxy/, agent.lock) are left out: an import rebuilds
them. `commonshelf import FILE` reads it back with `read_export` (archive_read.py),
which trusts nothing in the file.

An existing FILE is never overwritten (an operator who exports over last week's
archive would lose it if this one fails halfway): remove it first, or pick another name.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from commonshelf.installation.archive_format import (
    EXPORT_FORMAT,
    MANIFEST,
    ArchiveLimits,
    ExportedApp,
    ExportError,
    ExportManifest,
    manifest_problem,
    member_mode,
)
from commonshelf.installation.archive_read import read_export
from commonshelf.installation.backup import MANIFEST as BACKUP_MANIFEST

__all__ = [
    "EXPORT_FORMAT",
    "ArchiveLimits",
    "ExportError",
    "ExportManifest",
    "ExportedApp",
    "read_export",
    "write_export",
]


def write_export(out: Path, home: Path, manifest: ExportManifest) -> int:
    """Write the archive of `home` to `out` (which must not exist); returns its size.

    The archive is written beside `out` and linked into place only when complete, so
    a failure (a full disk included) leaves no file behind, and an `out` that appears
    meanwhile is never overwritten. It holds secrets: it is created mode 0600.
    """
    problem = manifest_problem(manifest)
    if problem or manifest.format != EXPORT_FORMAT:
        raise ExportError(
            f"Cannot export: {problem or f'format {manifest.format} is not {EXPORT_FORMAT}'}.",
            "report this as a bug in Commonshelf.",
        )
    if os.path.lexists(out):
        raise _exists(out)
    if not (home / "config.json").is_file():
        raise ExportError(
            f"{home} holds no installation (no config.json); nothing was written.",
            "run `commonshelf init` first, or point to the installation's home.",
        )
    for app, entry in sorted(manifest.apps.items()):
        if not (home / entry.backup / BACKUP_MANIFEST).is_file():
            raise ExportError(
                f"The backup {home / entry.backup} of {app} is missing; nothing was written.",
                f"back it up again (`commonshelf backup {app}`), then export.",
            )
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
        with os.fdopen(fd, "wb") as handle:
            with (
                gzip.GzipFile(out.name, "wb", 6, handle) as packed,
                tarfile.TarFile(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                body = msgspec.json.format(msgspec.json.encode(manifest), indent=2)
                _add_bytes(tar, MANIFEST, body + b"\n")
                for path, name in _entries(home, manifest):
                    _add(tar, path, name)
            handle.flush()
            os.fsync(handle.fileno())
            size = os.fstat(handle.fileno()).st_size
        _publish(Path(tmp), out)
    except OSError as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        where = f"{exc.filename}: " if exc.filename else ""
        raise ExportError(
            f"Could not write the export {out} ({where}{exc.strerror or exc}); nothing was "
            "written.",
            f"free disk space in {out.parent} or pick another place, and check that the "
            "installation's files are readable.",
        ) from None
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise
    return size


def _exists(out: Path) -> ExportError:
    return ExportError(
        f"{out} already exists; nothing was written.",
        "pick another file name, or remove the old archive first.",
    )


def _publish(tmp: Path, out: Path) -> None:
    """Put the finished archive at `out`, never over a file that appeared meanwhile."""
    try:
        os.link(tmp, out)
    except FileExistsError:
        raise _exists(out) from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(out):
            raise _exists(out) from None
        os.rename(tmp, out)
    else:
        tmp.unlink()
    folder = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _entries(home: Path, manifest: ExportManifest) -> Iterator[tuple[Path, str]]:
    """(path, name in the archive) of what an export holds, in the archive's order."""
    for name in ("config.json", "tuf/pinned-root.json", "tuf/subscription.json"):
        if (home / name).exists():
            yield home / name, name
    yield from _tree(home, "tuf/metadata")
    for folder in ("apps", "policy"):
        if (home / folder).is_dir():
            yield home / folder, folder
            for path in sorted((home / folder).glob("*.json")):
                yield path, f"{folder}/{path.name}"
    yield from _tree(home, "secrets")
    if (home / "history.jsonl").exists():
        yield home / "history.jsonl", "history.jsonl"
    for app in sorted(manifest.apps):
        yield from _tree(home, manifest.apps[app].backup)


def _points_inside(root: Path, link: str) -> bool:
    target = Path(os.path.realpath(link))
    return target.is_relative_to(Path(os.path.realpath(root)))


def _tree(home: Path, name: str) -> Iterator[tuple[Path, str]]:
    """A folder and everything under it, sorted; a link inside is refused, not followed
    (a symbolic link in secrets/ would export a file from anywhere on the machine)."""
    root = home / name
    if not root.is_dir():
        return
    yield root, name
    with os.scandir(root) as listing:
        entries = sorted(listing, key=lambda entry: entry.name)
    for entry in entries:
        child = f"{name}/{entry.name}"
        if entry.name.startswith(".") and entry.name.endswith((".tmp", ".partial")):
            continue  # an atomic write in progress, or left by a crash
        if entry.is_symlink() and name == "tuf/metadata" and _points_inside(root, entry.path):
            continue  # python-tuf's root.json -> root_history/N.root.json, made again on load
        if entry.is_symlink():
            raise ExportError(
                f"{home / child} is a symbolic link; an export holds only files and "
                "folders, so nothing was written.",
                "replace the link with the file it points to, or remove it.",
            )
        if entry.is_dir(follow_symlinks=False):
            yield from _tree(home, child)
        else:
            yield Path(entry.path), child


def _add(tar: tarfile.TarFile, path: Path, name: str) -> None:
    info = tarfile.TarInfo(name)
    if path.is_dir():
        found = path.stat()
        info.type = tarfile.DIRTYPE
        info.mode = member_mode(name, found.st_mode, True)
        info.mtime = int(found.st_mtime)
        tar.addfile(info)
        return
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not hang us
    with os.fdopen(fd, "rb") as handle:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise ExportError(
                f"{path} is not a regular file; an export holds only files and folders, so "
                "nothing was written.",
                "remove it from the installation's home.",
            )
        info.size = found.st_size
        info.mode = member_mode(name, found.st_mode, False)
        info.mtime = int(found.st_mtime)
        tar.addfile(info, handle)


def _add_bytes(tar: tarfile.TarFile, name: str, body: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(body)
    info.mode = 0o644
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(body))
