"""Reading an export archive defensively: it comes from elsewhere, so nothing in it is trusted.

`read_export` unpacks member by member into an empty staging folder. It caps the
compressed size (from stat) and counts every uncompressed byte as it reads (a gzip bomb
stops at the cap whatever the headers say); caps each tar header record (tarfile reads
pax and GNU long-name records whole, and its pax parser is quadratic on crafted input,
CVE-2024-6232 before Python 3.11.10) and the members, names and depth; refuses absolute
names, `..`, control characters, names outside the known top-level ones, links,
devices, FIFOs, sparse files, duplicates, global pax headers, an `export.json` that is
not first, not a manifest or from a newer format, a named backup folder that is
missing, damaged or truncated data and anything but zeros after the tar's end (so the
gzip checksum is verified). tarfile's `data_filter` runs on each member as a second
opinion. Files are created O_EXCL|O_NOFOLLOW; secrets get 0600 in 0700 folders. Any
refusal is one ExportError line naming the archive and the member, and leaves the
staging folder empty, so the caller changes nothing.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import tarfile
import zlib
from pathlib import Path
from typing import IO, BinaryIO, cast

import msgspec

from commonshelf.installation.archive_format import (
    EXPORT_FORMAT,
    MANIFEST,
    MANIFEST_LIMITS,
    ArchiveLimits,
    ExportError,
    ExportManifest,
    allowed_member,
    manifest_problem,
    member_mode,
    shown,
    size_text,
)
from commonshelf.installation.backup import MANIFEST as BACKUP_MANIFEST
from commonshelf.platform.loaders import InputError, KiB, MiB, load_json_bytes

_CHUNK = 1 * MiB  # one read when copying a member's data
# Names are at most 1 KiB, so a pax record (a name and a few numbers) fits in 4 KiB;
# at that size the quadratic pax parser takes milliseconds.
_RECORD = 4 * KiB
_HEADERS = 16 * KiB  # header bytes before one member: a pax and a GNU record and the header
_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
    tarfile.CONTTYPE: "a contiguous file",
}
_CHECK = "check that it is an archive written by `commonshelf export`, copied whole."
_AGAIN = "copy the archive again from where it was written."


class _Format(msgspec.Struct):
    """Just the format, read before the rest so a newer manifest gets the right error."""

    format: int


class _Refused(Exception):
    """A refusal found while reading; `read_export` adds the archive and the place."""

    def __init__(self, problem: str, fix: str = _CHECK, *, what: str = "") -> None:
        super().__init__(problem)
        self.problem, self.fix, self.what = problem, fix, what


class _Inflated:
    """The archive's uncompressed bytes, read forward only and counted against the cap.

    tarfile reads its headers through `read`: each record is capped (`_RECORD`), and so
    are the header bytes before one member (`_HEADERS`). Members' data goes through
    `take`, in chunks. Every byte counts, so a gzip bomb stops at the cap whatever the
    headers say, and padding after the tar's end is counted too.
    """

    def __init__(self, raw: BinaryIO, cap: int) -> None:
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self._cap = cap
        self.pos = 0
        self.headers = 0  # header bytes tarfile read since the last member
        self.last = b""  # the last record tarfile read: the block it stopped at

    def take(self, size: int) -> bytes:
        if size < 0:  # gzip would read to the end
            raise _Refused(f"it asks to read {size} bytes")
        try:
            data = self._gz.read(size)
        except gzip.BadGzipFile:
            raise
        except OSError as exc:  # the archive's own file: a disk error
            raise _Refused(f"it cannot be read ({exc.strerror or exc})", _AGAIN) from None
        self.pos += len(data)
        if self.pos > self._cap:
            raise _Refused(
                f"the archive unpacks to more than {size_text(self._cap)}, the limit",
                "check that it is an export written by `commonshelf export`; a gzip bomb "
                "unpacks to far more than it holds.",
            )
        return data

    def read(self, size: int = -1) -> bytes:
        self.headers += max(size, 0)
        if size < 0 or size > _RECORD or self.headers > _HEADERS:
            raise _Refused(
                f"its tar headers hold more than {size_text(_RECORD)} in one record or "
                f"{size_text(_HEADERS)} before one member"
            )
        self.last = self.take(size)
        return self.last

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or offset < self.pos:
            raise _Refused("its tar headers point backwards")
        while self.pos < offset and self.take(min(_CHUNK, offset - self.pos)):
            pass
        return self.pos


def read_export(archive: Path, into: Path, limits: ArchiveLimits | None = None) -> ExportManifest:
    """Unpack the export `archive` into the empty folder `into`; its manifest.

    On any refusal `into` is left empty and the error is one line naming the archive
    and the member.
    """
    limits = limits or ArchiveLimits()
    _check_staging(into)
    reader = _Reader(archive, into, limits)
    try:
        return reader.run()
    except _Refused as refused:
        _empty(into)
        what = refused.what or f"{archive}: {reader.place()}{refused.problem}"
        raise ExportError(f"{what}; nothing was imported.", refused.fix) from None
    except BaseException:
        _empty(into)
        raise


def _check_staging(into: Path) -> None:
    try:
        if not any(into.iterdir()):
            return
    except FileNotFoundError:
        into.mkdir(mode=0o700, parents=True)
        return
    except NotADirectoryError:
        pass
    raise ExportError(
        f"{into} is not an empty folder; nothing was imported.",
        "unpack into a new, empty folder.",
    )


def _empty(into: Path) -> None:
    for child in into.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


class _Reader:
    """One pass over an archive: each member checked, then created, then counted."""

    def __init__(self, archive: Path, into: Path, limits: ArchiveLimits) -> None:
        self.archive, self.into, self.limits = archive, into, limits
        self.seen = 0  # members read so far
        self.member = ""  # the member being read, or the last one read
        self.between = False  # reading the headers after `member`
        self.files: set[str] = set()
        self.dirs: set[str] = set()
        self.manifest: ExportManifest | None = None

    def place(self) -> str:
        """Where a refusal lies: '' (the archive as a whole), a member or just after one."""
        if not self.member:
            return ""
        return f"{'after ' if self.between else ''}member {shown(self.member)}: "

    def run(self) -> ExportManifest:
        try:
            found = self.archive.stat()
        except OSError as exc:
            raise ExportError(
                f"{self.archive} cannot be read ({exc.strerror}); nothing was imported.",
                "check the path to the archive.",
            ) from None
        if not stat.S_ISREG(found.st_mode):
            raise _Refused("it is not a regular file", "pass the archive file itself.")
        if found.st_size > self.limits.max_archive:
            raise _Refused(
                f"it is {found.st_size} bytes, over the {size_text(self.limits.max_archive)} limit"
            )
        with self.archive.open("rb") as raw:
            inflated = _Inflated(raw, self.limits.max_total)
            try:
                self._members(inflated)
            except (EOFError, gzip.BadGzipFile, zlib.error, tarfile.TarError) as exc:
                raise self._damaged(exc, inflated) from None
            except RecursionError:
                raise _Refused("its tar headers nest without end") from None
        if self.manifest is None:
            raise _Refused("it holds no export.json")
        for app, entry in sorted(self.manifest.apps.items()):
            if f"{entry.backup}/{BACKUP_MANIFEST}" not in self.files:
                self.member, self.between = entry.backup, False
                raise _Refused(f"export.json names it as the backup of {app}, but it is missing")
        return self.manifest

    def _damaged(self, exc: BaseException, inflated: _Inflated) -> _Refused:
        if isinstance(exc, gzip.BadGzipFile) and inflated.pos == 0:
            return _Refused("it is not gzip-compressed")
        if isinstance(exc, EOFError):
            return _Refused("it ends early (the file is cut short)", _AGAIN)
        if isinstance(exc, tarfile.ReadError) and not self.member:
            return _Refused(f"it is not a tar archive ({exc})")
        return _Refused(f"its data is damaged ({exc})", _AGAIN)

    def _members(self, inflated: _Inflated) -> None:
        tar = tarfile.TarFile(fileobj=cast(IO[bytes], inflated), mode="r")
        while True:
            inflated.headers = 0
            self.between = True
            member = tar.next()
            tar.members.clear()  # type: ignore[attr-defined]  # one at a time: none accumulate
            if member is None:
                break
            self.member, self.between = member.name, False
            self.seen += 1
            if tar.pax_headers:
                raise _Refused("a global pax header precedes it (exports have none)")
            self._member(member, inflated)
        end = inflated.last
        if len(end) not in (0, tarfile.BLOCKSIZE) or end.count(0) != len(end):
            raise _Refused("the tar data after it is damaged or cut short", _AGAIN)
        while chunk := inflated.take(_CHUNK):
            if chunk.count(0) != len(chunk):
                raise _Refused("data follows the end of the tar archive")

    def _member(self, member: tarfile.TarInfo, inflated: _Inflated) -> None:
        parts = self._check_name(member)
        folder = member.isdir()
        if not folder and member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            kind = _KINDS.get(member.type, f"of tar type {member.type!r}")
            raise _Refused(f"it is {kind}; an export holds only files and folders")
        name = "/".join(parts)
        if not allowed_member(parts, folder):
            raise _Refused("it is not part of an export (unknown top-level name or place)")
        if (self.manifest is None) != (name == MANIFEST):
            raise _Refused("export.json must be the first member, and only once")
        if name in self.files or name in self.dirs:
            raise _Refused("it appears twice in the archive")
        try:
            mode = tarfile.data_filter(member, str(self.into)).mode or 0o644
        except tarfile.FilterError as exc:
            raise _Refused(f"it is refused by tarfile's data filter ({exc})") from None
        left = self.limits.max_total - inflated.pos
        if member.size < 0:
            raise _Refused(f"its size is negative ({member.size})")
        if member.size > left:
            raise _Refused(
                f"it holds {member.size} bytes, more than the "
                f"{size_text(self.limits.max_total)} the archive may unpack to"
            )
        self._parents(parts)
        if folder:
            self._mkdir(name)
        elif self.manifest is None:
            self.manifest = self._read_manifest(member, inflated)
        else:
            self._write(name, member, inflated, member_mode(name, mode, False))

    def _check_name(self, member: tarfile.TarInfo) -> list[str]:
        name = member.name
        if self.seen > self.limits.max_members:
            raise _Refused(f"the archive holds more than {self.limits.max_members} members")
        if any(ord(char) < 32 or ord(char) == 127 for char in name):
            raise _Refused("its name holds control characters")
        try:
            size = len(name.encode("utf-8"))
        except UnicodeEncodeError:
            raise _Refused("its name is not UTF-8") from None
        if size > self.limits.max_name:
            raise _Refused(f"its name is longer than {self.limits.max_name} bytes")
        if name.startswith("/"):
            raise _Refused("its name is absolute")
        parts = name.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise _Refused("its name holds an empty, '.' or '..' component")
        if any(len(part.encode("utf-8")) > 255 for part in parts):
            raise _Refused("its name holds a component longer than 255 bytes")
        if len(parts) > self.limits.max_depth:
            raise _Refused(f"it lies more than {self.limits.max_depth} folders deep")
        return parts

    def _parents(self, parts: list[str]) -> None:
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in self.files:
                raise _Refused(f"it lies under {shown(parent)}, which is a file")
            if parent not in self.dirs:
                self._mkdir(parent)

    def _mkdir(self, name: str) -> None:
        path = self.into / name
        try:
            if name not in self.dirs:
                path.mkdir()
            path.chmod(member_mode(name, 0o755, True))
        except OSError as exc:
            raise self._unwritable(exc) from None
        self.dirs.add(name)

    def _read_manifest(self, member: tarfile.TarInfo, inflated: _Inflated) -> ExportManifest:
        if member.size > MANIFEST_LIMITS.max_bytes:
            raise _Refused(f"it is over the {size_text(MANIFEST_LIMITS.max_bytes)} it may have")
        inflated.seek(member.offset_data)
        body = inflated.take(member.size)
        if len(body) != member.size:
            raise _Refused("it is cut short", _AGAIN)
        try:
            data = load_json_bytes(body, f"{self.archive} (member export.json)", MANIFEST_LIMITS)
            found = msgspec.convert(data, _Format)
            if found.format > EXPORT_FORMAT:
                raise _Refused(
                    "",
                    "upgrade commonshelf on this machine.",
                    what=f"{self.archive} was written by a newer Commonshelf (export format "
                    f"{found.format} in its export.json; this one reads {EXPORT_FORMAT})",
                )
            manifest = msgspec.convert(data, ExportManifest)
        except InputError as exc:
            raise _Refused(exc.problem + (f" on line {exc.line}" if exc.line else "")) from None
        except msgspec.ValidationError as exc:
            raise _Refused(f"it is not an export manifest ({exc})") from None
        problem = manifest_problem(manifest) or (
            f"export format {manifest.format} does not exist" if manifest.format < 1 else ""
        )
        if problem:
            raise _Refused(problem)
        self._create("export.json", body, 0o644)
        return manifest

    def _write(self, name: str, member: tarfile.TarInfo, inflated: _Inflated, mode: int) -> None:
        inflated.seek(member.offset_data)
        try:
            fd = os.open(
                self.into / name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                mode,
            )
            with os.fdopen(fd, "wb") as out:
                os.fchmod(fd, mode)
                left = member.size
                while left:
                    chunk = inflated.take(min(_CHUNK, left))
                    if not chunk:
                        raise _Refused("it is cut short", _AGAIN)
                    out.write(chunk)
                    left -= len(chunk)
                out.flush()
                os.fsync(fd)
        except gzip.BadGzipFile:
            raise
        except OSError as exc:
            raise self._unwritable(exc) from None
        self.files.add(name)

    def _create(self, name: str, body: bytes, mode: int) -> None:
        try:
            fd = os.open(self.into / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as out:
                out.write(body)
        except OSError as exc:
            raise self._unwritable(exc) from None
        self.files.add(name)

    def _unwritable(self, exc: OSError) -> _Refused:
        return _Refused(
            f"it could not be unpacked into {self.into} ({exc.strerror or exc})",
            f"free disk space in {self.into.parent}.",
        )
