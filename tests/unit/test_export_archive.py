"""Export archives: a round trip keeps every byte and the secrets' modes, a failed export
leaves no file, and a hostile archive is refused fast, in one line naming the archive and
the member, with the staging folder left empty."""

from __future__ import annotations

import errno
import gzip
import io
import os
import stat
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from commonshelf.installation import archive
from commonshelf.installation.archive import (
    EXPORT_FORMAT,
    ArchiveLimits,
    ExportedApp,
    ExportError,
    ExportManifest,
    read_export,
    write_export,
)

BACKUP = "backups/wiki/2026-01-01T000000Z-1.0.0+1"
MANIFEST = ExportManifest(
    format=EXPORT_FORMAT,
    created="2026-01-01T00:00:00Z",
    agent="0.1.0",
    apps={"wiki": ExportedApp(version="1.0.0+1", backup=BACKUP)},
)
EXPORTED = {  # relative path -> bytes, for every file an export carries
    "config.json": b'{"repository": "http://127.0.0.1:1/"}\n',
    "tuf/pinned-root.json": b'{"signed": "root"}',
    "tuf/subscription.json": b'{"repository": "http://127.0.0.1:1"}',
    "tuf/metadata/root.json": b'{"signed": "root v2"}',
    "tuf/metadata/timestamp.json": b'{"signed": "timestamp"}',
    "tuf/metadata/root_history/1.root.json": b'{"signed": "root v1"}',
    "apps/wiki.json": b'{"app": "wiki"}',
    "policy/wiki.json": b'{"auto": "minor"}',
    "secrets/wiki/db_password": b"s3cret-db",
    "secrets/wiki/admin_password": b"s3cret-admin",
    "history.jsonl": b'{"app": "wiki", "outcome": "ok"}\n',
    f"{BACKUP}/backup.json": b'{"app": "wiki"}',
    f"{BACKUP}/data.tar": os.urandom(200_000),  # incompressible: larger than a small cap
}
LEFT_OUT = {  # caches, derived and runtime files, and a backup the manifest does not name
    "tuf/targets/catalog.json": b"{}",
    "stacks/wiki.yml": b"services: {}",
    "proxy/routes.map": b"",
    "agent.lock": b"",
    "backups/wiki/older/backup.json": b"{}",
    "secrets/wiki/.db_password.x1.tmp": b"half",
}


def _home(root: Path) -> Path:
    home = root / "home"
    for name, body in {**EXPORTED, **LEFT_OUT}.items():
        path = home / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    (home / "secrets").chmod(0o700)
    (home / "secrets/wiki").chmod(0o700)
    for name in ("db_password", "admin_password"):
        (home / "secrets/wiki" / name).chmod(0o600)
    return home


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_an_export_comes_back_byte_for_byte_with_the_secrets_modes(tmp_path: Path) -> None:
    home = _home(tmp_path)
    out = tmp_path / "site.tar.gz"
    written = write_export(out, home, MANIFEST)
    assert written == out.stat().st_size > 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds the secrets
    with tarfile.open(out) as tar:
        assert tar.getnames()[0] == "export.json"
    into = tmp_path / "staging"
    manifest = read_export(out, into)
    assert manifest == MANIFEST
    files = _files(into)
    assert files.pop("export.json").startswith(b"{")
    assert files == EXPORTED  # nothing left out, nothing extra (no cache, no lock, no temp)
    for folder in ("secrets", "secrets/wiki"):
        assert stat.S_IMODE((into / folder).stat().st_mode) == 0o700
    for name in ("db_password", "admin_password"):
        assert stat.S_IMODE((into / "secrets/wiki" / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((into / "config.json").stat().st_mode) == 0o644


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    home = _home(tmp_path)
    out = tmp_path / "site.tar.gz"
    out.write_bytes(b"last week's export")
    with pytest.raises(ExportError, match="already exists; nothing was written"):
        write_export(out, home, MANIFEST)
    assert out.read_bytes() == b"last week's export"
    assert sorted(os.listdir(tmp_path)) == ["home", "site.tar.gz"]


def test_a_file_that_appears_while_exporting_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _home(tmp_path)
    out = tmp_path / "site.tar.gz"
    entries = archive._entries

    def racing(home: Path, manifest: ExportManifest) -> Iterator[tuple[Path, str]]:
        yield from entries(home, manifest)
        out.write_bytes(b"another export")

    monkeypatch.setattr(archive, "_entries", racing)
    with pytest.raises(ExportError, match="already exists"):
        write_export(out, home, MANIFEST)
    assert out.read_bytes() == b"another export"
    assert sorted(os.listdir(tmp_path)) == ["home", "site.tar.gz"]


def test_a_full_disk_leaves_no_half_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _home(tmp_path)
    added = tarfile.TarFile.addfile
    calls = []

    def filling(self: tarfile.TarFile, info: tarfile.TarInfo, fileobj: object = None) -> None:
        calls.append(info.name)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        added(self, info, fileobj)  # type: ignore[arg-type]

    monkeypatch.setattr(tarfile.TarFile, "addfile", filling)
    with pytest.raises(ExportError) as caught:
        write_export(tmp_path / "site.tar.gz", home, MANIFEST)
    assert "No space left on device" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert os.listdir(tmp_path) == ["home"]


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_an_unreadable_home_file_midway_leaves_no_temp_file(tmp_path: Path, kind: str) -> None:
    home = _home(tmp_path)
    odd = home / "secrets/wiki/zz_odd"
    if kind == "fifo":
        os.mkfifo(odd)
    else:
        odd.symlink_to("/etc/passwd")  # would export a file from outside the home
    with pytest.raises(ExportError, match=str(odd)):
        write_export(tmp_path / "site.tar.gz", home, MANIFEST)
    assert os.listdir(tmp_path) == ["home"]


def test_a_missing_backup_is_refused_before_writing(tmp_path: Path) -> None:
    home = _home(tmp_path)
    manifest = ExportManifest(
        format=EXPORT_FORMAT,
        created="now",
        agent="0.1.0",
        apps={"wiki": ExportedApp(version="1", backup="backups/wiki/gone")},
    )
    with pytest.raises(ExportError, match="backups/wiki/gone of wiki is missing"):
        write_export(tmp_path / "site.tar.gz", home, manifest)
    assert os.listdir(tmp_path) == ["home"]


def test_a_staging_folder_that_is_not_empty_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "site.tar.gz"
    write_export(out, _home(tmp_path), MANIFEST)
    into = tmp_path / "staging"
    into.mkdir()
    (into / "mine").write_bytes(b"keep")
    with pytest.raises(ExportError, match="is not an empty folder"):
        read_export(out, into)
    assert _files(into) == {"mine": b"keep"}


# ---- hostile archives, built in the tests

Member = tuple[tarfile.TarInfo, bytes]


def _member(
    name: str, body: bytes = b"", kind: bytes = tarfile.REGTYPE, **fields: object
) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(body) if kind == tarfile.REGTYPE else 0
    for key, value in fields.items():
        setattr(info, key, value)
    return info, body


def _manifest(apps: str = "{}", fmt: int = EXPORT_FORMAT) -> Member:
    body = f'{{"format": {fmt}, "created": "now", "agent": "9.9", "apps": {apps}}}'
    return _member("export.json", body.encode())


CONFIG = _member("config.json", b"{}")
WIKI = '{"wiki": {"version": "1", "backup": "backups/wiki/1"}}'


def _tar(path: Path, members: list[Member], **options: object) -> Path:
    with tarfile.open(path, "w:gz", **options) as tar:  # type: ignore[call-overload]
        for info, body in members:
            tar.addfile(info, io.BytesIO(body) if info.isreg() else None)
    return path


def _raw(path: Path, data: bytes | Iterator[bytes]) -> Path:
    """A gzip stream of the given tar bytes, written as they come."""
    with gzip.open(path, "wb") as out:
        for chunk in [data] if isinstance(data, bytes) else data:
            out.write(chunk)
    return path


def _tar_bytes(members: list[Member], end: bool = True) -> bytes:
    """A plain tar; without its end blocks when more headers are to follow."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, body in members:
            tar.addfile(info, io.BytesIO(body) if info.isreg() else None)
        offset = tar.offset
    return buffer.getvalue() if end else buffer.getvalue()[:offset]


def _pax(size: int, body: bytes = b"") -> bytes:
    """A pax extended header that says it is `size` bytes long, and its first bytes."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = size
    return info.tobuf(tarfile.USTAR_FORMAT) + body


def _negative() -> bytes:
    """A GNU header whose size is negative (base-256): gzip reads to the end for -1."""
    info = tarfile.TarInfo("history.jsonl")
    info.size = -5000
    return info.tobuf(tarfile.GNU_FORMAT)


def _zeros(total: int) -> Iterator[bytes]:
    chunk = bytes(1 << 20)
    for _ in range(total // len(chunk)):
        yield chunk


MB = 1_000_000
BOMB = ArchiveLimits(max_total=10 * MB)


def _exported(tmp_path: Path) -> bytes:
    out = tmp_path / "good.tar.gz"
    write_export(out, _home(tmp_path), MANIFEST)
    return out.read_bytes()


Build = Callable[[Path], Path]
HOSTILE: dict[str, tuple[Build, str, ArchiveLimits]] = {
    # case: (build the archive at a path, text the error must hold, limits)
    "dot-dot": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("apps/../../evil")]),
        "'apps/../../evil'",
        ArchiveLimits(),
    ),
    "leading dot-dot": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("../evil")]),
        "'../evil'",
        ArchiveLimits(),
    ),
    "absolute": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("/etc/cron.d/evil")]),
        "'/etc/cron.d/evil'",
        ArchiveLimits(),
    ),
    "symlink": (
        lambda p: _tar(
            p,
            [
                _manifest(),
                CONFIG,
                _member("apps/wiki.json", kind=tarfile.SYMTYPE, linkname="/etc/shadow"),
            ],
        ),
        "'apps/wiki.json': it is a symbolic link",
        ArchiveLimits(),
    ),
    "hard link": (
        lambda p: _tar(
            p,
            [
                _manifest(),
                CONFIG,
                _member("apps/wiki.json", kind=tarfile.LNKTYPE, linkname="/etc/shadow"),
            ],
        ),
        "'apps/wiki.json': it is a hard link",
        ArchiveLimits(),
    ),
    "device": (
        lambda p: _tar(
            p,
            [
                _manifest(),
                CONFIG,
                _member("secrets/wiki/mem", kind=tarfile.CHRTYPE, devmajor=1, devminor=1),
            ],
        ),
        "'secrets/wiki/mem': it is a character device",
        ArchiveLimits(),
    ),
    "fifo": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("history.jsonl", kind=tarfile.FIFOTYPE)]),
        "'history.jsonl': it is a FIFO",
        ArchiveLimits(),
    ),
    "duplicate": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("config.json", b"{}")]),
        "'config.json': it appears twice",
        ArchiveLimits(),
    ),
    "unknown top-level": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("etc/passwd")]),
        "'etc/passwd': it is not part of an export",
        ArchiveLimits(),
    ),
    "runtime file": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("stacks/wiki.yml")]),
        "'stacks/wiki.yml'",
        ArchiveLimits(),
    ),
    "trust cache": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("tuf/targets/c.json")]),
        "'tuf/targets/c.json'",
        ArchiveLimits(),
    ),
    "under a file": (
        lambda p: _tar(
            p, [_manifest(), CONFIG, _member("apps/wiki.json"), _member("apps/wiki.json/x")]
        ),
        "'apps/wiki.json/x': it lies under 'apps/wiki.json'",
        ArchiveLimits(),
    ),
    "control character": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("apps/a\nb.json")]),
        "'apps/a\\nb.json'",
        ArchiveLimits(),
    ),
    "too many members": (
        lambda p: _tar(p, [_manifest(), CONFIG] + [_member(f"apps/{n}.json") for n in range(20)]),
        "more than 10 members",
        ArchiveLimits(max_members=10),
    ),
    "too deep": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("backups/" + "d/" * 40 + "f")]),
        "more than 32 folders deep",
        ArchiveLimits(),
    ),
    "name too long": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("secrets/" + "/".join(["n" * 200] * 6))]),
        "longer than 1024 bytes",
        ArchiveLimits(),
    ),
    "component too long": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("apps/" + "a" * 300)]),
        "longer than 255 bytes",
        ArchiveLimits(),
    ),
    "negative size": (
        lambda p: _raw(p, _tar_bytes([_manifest(), CONFIG], end=False) + _negative() + bytes(2048)),
        "member 'history.jsonl': its size is negative",
        ArchiveLimits(),
    ),
    "sparse file": (
        lambda p: _tar(
            p, [_manifest(), CONFIG, _member("history.jsonl", kind=tarfile.GNUTYPE_SPARSE)]
        ),
        "member 'history.jsonl': it is a sparse file",
        ArchiveLimits(),
    ),
    "global pax header": (
        lambda p: _tar(p, [_manifest(), CONFIG], pax_headers={"x": "y"}, format=tarfile.PAX_FORMAT),
        "member 'export.json': a global pax header",
        ArchiveLimits(),
    ),
    "gzip bomb": (
        lambda p: _tar(
            p, [_manifest(WIKI), CONFIG, _member("backups/wiki/1/data.tar", bytes(50 * MB))]
        ),
        "'backups/wiki/1/data.tar': it holds 50000000 bytes",
        BOMB,
    ),
    "zeros after the end": (
        lambda p: _raw(p, iter([_tar_bytes([_manifest(), CONFIG]), *_zeros(50 * MB)])),
        "after member 'config.json': the archive unpacks to more than",
        BOMB,
    ),
    "huge pax record": (
        lambda p: _raw(
            p, iter([_tar_bytes([_manifest(), CONFIG], end=False), _pax(50 * MB), *_zeros(50 * MB)])
        ),
        "after member 'config.json': its tar headers hold more",
        BOMB,
    ),
    "quadratic pax record": (
        lambda p: _raw(
            p, _tar_bytes([_manifest(), CONFIG], end=False) + _pax(60 * 1024, b"1" * 60 * 1024)
        ),
        "after member 'config.json': its tar headers",
        ArchiveLimits(),
    ),
    "chained pax headers": (
        lambda p: _raw(
            p, _tar_bytes([_manifest(), CONFIG], end=False) + (_pax(512, b"1" * 512) * 2000)
        ),
        "after member 'config.json': its tar headers",
        ArchiveLimits(),
    ),
    "over the total": (
        lambda p: _tar(p, [_manifest(), CONFIG, _member("history.jsonl", bytes(200_000))]),
        "'history.jsonl': it holds 200000 bytes",
        ArchiveLimits(max_total=100_000),
    ),
    "over the compressed size": (
        lambda p: _tar(p, [_manifest(), CONFIG]),
        "bytes, over the 100 bytes limit",
        ArchiveLimits(max_archive=100),
    ),
    "data after the end": (
        lambda p: _raw(p, _tar_bytes([_manifest(), CONFIG]) + b"evil" * 300),
        "data follows the end of the tar archive",
        ArchiveLimits(),
    ),
    "not a gzip": (
        lambda p: (p.write_bytes(_tar_bytes([_manifest()])), p)[1],
        "it is not gzip-compressed",
        ArchiveLimits(),
    ),
    "not an archive": (
        lambda p: _raw(p, b"just text\n" * 100),
        "it is not a tar archive",
        ArchiveLimits(),
    ),
    "empty": (lambda p: _tar(p, []), "it holds no export.json", ArchiveLimits()),
    "missing export.json": (
        lambda p: _tar(p, [CONFIG]),
        "member 'config.json': export.json must be the first",
        ArchiveLimits(),
    ),
    "export.json not first": (
        lambda p: _tar(p, [CONFIG, _manifest()]),
        "member 'config.json': export.json must be the first",
        ArchiveLimits(),
    ),
    "export.json twice": (
        lambda p: _tar(p, [_manifest(), _manifest()]),
        "member 'export.json': export.json must be the first",
        ArchiveLimits(),
    ),
    "newer format": (
        lambda p: _tar(p, [_manifest(fmt=2), CONFIG]),
        "was written by a newer Commonshelf (export format 2 in its export.json; "
        "this one reads 1); nothing was imported. Fix: upgrade commonshelf",
        ArchiveLimits(),
    ),
    "manifest not JSON": (
        lambda p: _tar(p, [_member("export.json", b"{nope"), CONFIG]),
        "member 'export.json': invalid JSON",
        ArchiveLimits(),
    ),
    "manifest of another shape": (
        lambda p: _tar(p, [_member("export.json", b"[1]"), CONFIG]),
        "member 'export.json': it is not an export manifest",
        ArchiveLimits(),
    ),
    "backup outside its place": (
        lambda p: _tar(
            p, [_manifest('{"wiki": {"version": "1", "backup": "backups/../../etc"}}'), CONFIG]
        ),
        "member 'export.json': the backup folder 'backups/../../etc' of wiki",
        ArchiveLimits(),
    ),
    "backup named but missing": (
        lambda p: _tar(p, [_manifest(WIKI), CONFIG]),
        "member 'backups/wiki/1': export.json names it as the backup",
        ArchiveLimits(),
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_fast_and_leaves_nothing(tmp_path: Path, case: str) -> None:
    build, expected, limits = HOSTILE[case]
    path = build(tmp_path / "hostile.tar.gz")
    into = tmp_path / "staging"
    into.mkdir()
    started = time.monotonic()
    with pytest.raises(ExportError) as caught:
        read_export(path, into, limits)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert message.startswith(f"{path}"), message
    assert expected in message, message
    assert "\n" not in message and "nothing was imported" in message
    assert os.listdir(into) == []
    assert elapsed < 1.0, f"{case} took {elapsed:.2f} s"


@pytest.mark.parametrize("damage", ["truncated", "flipped byte"])
def test_a_damaged_export_is_one_line_and_leaves_nothing(tmp_path: Path, damage: str) -> None:
    data = bytearray(_exported(tmp_path))
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    path = tmp_path / "damaged.tar.gz"
    path.write_bytes(bytes(data))
    into = tmp_path / "staging"
    started = time.monotonic()
    with pytest.raises(ExportError) as caught:
        read_export(path, into)
    assert time.monotonic() - started < 1.0
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert ("cut short" if damage == "truncated" else "damaged") in message, message
    assert "member '" in message  # where it broke: the member being read, or just after one
    assert os.listdir(into) == []


def test_a_real_export_over_the_uncompressed_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.tar.gz"
    path.write_bytes(_exported(tmp_path))
    into = tmp_path / "staging"
    with pytest.raises(ExportError, match=r"data\.tar'.*more than the 64 KiB"):
        read_export(path, into, ArchiveLimits(max_total=64 * 1024))
    assert os.listdir(into) == []


def test_a_folder_is_not_an_archive(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="it is not a regular file"):
        read_export(tmp_path, tmp_path / "staging")
    assert os.listdir(tmp_path / "staging") == []
