"""The published repository a release extends: fetched, verified against the pinned root,
and copied into public/ before anything is signed.

public/ is not in git, so a CI checkout has none; a publish there would start a new chain at
version 1, which every installation holding a later version rightly refuses. When a published
repository is configured (`COMMONSHELF_PUBLISHED_URL`, the address it is served at, or
`COMMONSHELF_PUBLISHED_DIR`, a folder holding the same files), `sync` reads it with
python-tuf's own client (`Updater`, from the source's `1.root.json`: each root signed by the
thresholds of its predecessor and of itself, timestamp, snapshot and targets by the keys the
final root names, versions, lengths and hashes as they name each other, every target checked),
requires that this chain of roots passes through the pinned root committed in
`shared/trust/root.json`, and only then replaces public/ with the verified files, where the
publisher appends the next versions. With nothing configured public/ is used as it is (the
local demo).

One client rule is not applied: expiry. A publisher must be able to re-sign a repository whose
timestamp expired while no job ran (the release says which roles had expired). A stale copy
(an old state served by a cache) is refused otherwise: when public/ already holds a newer
timestamp, and when the committed catalog.json lists versions the published one lacks.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, Signed, TargetFile, Targets, Timestamp
from tuf.api.serialization import DeserializationError
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig, Urllib3Fetcher

from commonshelf.catalogue.catalog import Catalog
from commonshelf.platform.errors import ReleaseError, TrustError
from commonshelf.platform.fsutil import write_bytes_atomic
from commonshelf.platform.progress import Say, quiet
from commonshelf.platform.settings import Settings

TIMEOUT = 30  # seconds per request to the published repository
CATALOG = "catalog.json"
_CONFIG = UpdaterConfig(app_user_agent="commonshelf-release")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Origin:
    """The published repository as verified (now in public/)."""

    source: str
    root_version: int
    timestamp_version: int
    snapshot_version: int
    targets_version: int
    target_files: int
    expired: tuple[str, ...]  # roles whose metadata had expired (the release re-signs them)
    catalog: bytes | None  # the published catalog.json (verified), if it has one

    def describe(self) -> str:
        return (
            f"root v{self.root_version}, timestamp v{self.timestamp_version}, "
            f"targets v{self.targets_version}, {self.target_files} target file(s)"
        )


class _FolderFetcher(FetcherInterface):
    """Files of a folder under `file://` URLs; a missing one answers 404 as a server would
    (the walk over root versions stops at the first one missing)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).resolve()
        if not path.is_relative_to(self.folder) or not path.is_file():
            raise tuf_errors.DownloadHTTPError(f"{path} does not exist", 404)
        return self._chunks(path)

    @staticmethod
    def _chunks(path: Path) -> Iterator[bytes]:
        with path.open("rb") as handle:
            while chunk := handle.read(65536):
                yield chunk


class _Reader(Updater):
    """python-tuf's client with what a publisher needs and an installation must not do: it
    accepts expired metadata (every other rule applies) and loads every targets role."""

    def refresh_ignoring_expiry(self) -> None:
        self._trusted_set.reference_time = _EPOCH  # nothing is expired at the epoch
        self.refresh()

    def target_roles(self) -> list[tuple[str, Targets]]:
        """Each targets role reachable from the top-level one, verified, top-level first."""
        found: list[tuple[str, Targets]] = []
        queue, seen = [(Targets.type, Root.type)], set()
        while queue:
            role, parent = queue.pop(0)
            if role in seen:
                continue
            seen.add(role)
            targets = self._load_targets(role, parent)
            found.append((role, targets))
            delegations = targets.delegations
            if delegations is not None and delegations.roles:
                queue += [(name, role) for name in delegations.roles]
            elif delegations is not None and delegations.succinct_roles is not None:
                queue += [(name, role) for name in delegations.succinct_roles.get_roles()]
        return found


def _locations(source: str) -> tuple[FetcherInterface, str]:
    """A fetcher for `source` (URL or folder) and the base URL the repository is under."""
    if source.startswith(("http://", "https://")):
        return Urllib3Fetcher(socket_timeout=TIMEOUT, app_user_agent=_CONFIG.app_user_agent), (
            source.rstrip("/")
        )
    folder = Path(source)
    if not (folder / "metadata").is_dir():
        raise ReleaseError(
            f"COMMONSHELF_PUBLISHED_DIR names {folder}, which holds no metadata/ folder.",
            "point it at the published repository (the folder with metadata/ and targets/).",
        )
    return _FolderFetcher(folder), folder.resolve().as_uri()


def _root(data: bytes, where: str) -> Metadata[Root]:
    try:
        return Metadata[Root].from_bytes(data)
    except (DeserializationError, ValueError, TypeError) as exc:
        raise TrustError(
            f"{where} is not TUF root metadata ({exc}).",
            "commit the published repository's 1.root.json, obtained out of band, there.",
        ) from None


def _expired(signed: list[Signed], now: datetime) -> tuple[str, ...]:
    return tuple(sorted({s.type for s in signed if s.is_expired(now)}))


def verify(source: str, anchor: bytes, into: Path, *, reuse: Path | None = None) -> Origin:
    """Read the repository at `source`, verify it, require that its roots chain through
    `anchor`, and write it into the new folder `into` (a public/ layout: versioned metadata,
    targets under their hashes). Targets already in `reuse` with the signed hash are copied
    from there instead of downloaded."""
    fetcher, base = _locations(source)
    pinned = _root(anchor, "The pinned root (shared/trust/root.json)")
    with tempfile.TemporaryDirectory(prefix="commonshelf-origin-") as work, _translated(source):
        first = _first_root(fetcher, base, source)
        client = Path(work) / "client"
        client.mkdir()
        reader = _Reader(
            str(client),
            f"{base}/metadata/",
            str(Path(work) / "downloads"),
            f"{base}/targets/",
            fetcher=fetcher,
            config=_CONFIG,
            bootstrap=first,
        )
        reader.refresh_ignoring_expiry()
        roots = {
            int(path.name.split(".")[0]): path.read_bytes()
            for path in (client / "root_history").glob("*.root.json")
        }
        chained = roots.get(pinned.signed.version)
        if chained is None or _root(chained, source).signed_bytes != pinned.signed_bytes:
            raise TrustError(
                f"The repository at {source} does not chain to the pinned root (version "
                f"{pinned.signed.version} of its roots is not that root).",
                "check the address; if the repository was started anew, commit its "
                "1.root.json as shared/trust/root.json only if you obtained it out of band.",
            )
        metadata = into / "metadata"
        for version, data in roots.items():
            write_bytes_atomic(metadata / f"{version}.root.json", data)
        timestamp_bytes = (client / "timestamp.json").read_bytes()
        write_bytes_atomic(metadata / "timestamp.json", timestamp_bytes)
        snapshot_bytes = (client / "snapshot.json").read_bytes()
        snapshot = Metadata.from_bytes(snapshot_bytes).signed
        write_bytes_atomic(metadata / f"{snapshot.version}.snapshot.json", snapshot_bytes)
        roles = reader.target_roles()
        catalog: bytes | None = None
        files = 0
        for role, targets in roles:
            name = urllib.parse.quote(role, "")
            data = (client / f"{name}.json").read_bytes()
            write_bytes_atomic(metadata / f"{targets.version}.{name}.json", data)
            for info in targets.targets.values():
                content = _target(reader, info, Path(work) / "target", reuse)
                for path in _stored(into / "targets", info):
                    write_bytes_atomic(path, content)
                files += 1
                if role == Targets.type and info.path == CATALOG:
                    catalog = content
        timestamp = Metadata[Timestamp].from_bytes(timestamp_bytes).signed
        final = _root(roots[max(roots)], source).signed
        expired = _expired([final, timestamp, snapshot, roles[0][1]], datetime.now(UTC))
        return Origin(
            source=source,
            root_version=final.version,
            timestamp_version=timestamp.version,
            snapshot_version=snapshot.version,
            targets_version=roles[0][1].version,
            target_files=files,
            expired=expired,
            catalog=catalog,
        )


def _stored(folder: Path, info: TargetFile) -> list[Path]:
    """Where a consistent-snapshot repository keeps a target: once per hash it is signed by."""
    directory, _, name = info.path.rpartition("/")
    return [folder / directory / f"{digest}.{name}" for digest in info.hashes.values()]


def _target(reader: _Reader, info: TargetFile, scratch: Path, reuse: Path | None) -> bytes:
    """A target's verified bytes: the copy in `reuse` if it is the signed one, else
    downloaded (python-tuf checks the signed length and hashes)."""
    for held in _stored(reuse / "targets", info) if reuse is not None else []:
        try:
            data = held.read_bytes()
            info.verify_length_and_hashes(data)
            return data
        except (OSError, tuf_errors.LengthOrHashMismatchError):
            continue
    reader.download_target(info, filepath=str(scratch))
    data = scratch.read_bytes()
    scratch.unlink()
    return data


@contextlib.contextmanager
def _translated(source: str) -> Iterator[None]:
    """python-tuf's and the network's failures as one line that names the source and a fix."""
    where = f"The published repository at {source}"
    try:
        yield
    except tuf_errors.DownloadHTTPError as exc:
        raise ReleaseError(
            f"{where} answered HTTP {exc.status_code} ({exc}).",
            "check the address and that every file of public/ was uploaded.",
        ) from None
    except tuf_errors.DownloadError as exc:
        raise ReleaseError(
            f"{where} could not be read ({exc}).",
            "check the address, the network and that its server runs.",
        ) from None
    except tuf_errors.RepositoryError as exc:
        raise TrustError(
            f"{where} failed verification ({type(exc).__name__}: {exc}); nothing was published.",
            "restore the repository from the last release's public/ (never edit a published "
            "file), or check that the address is the real one.",
        ) from None


def _first_root(fetcher: FetcherInterface, base: str, source: str) -> bytes:
    try:
        return fetcher.download_bytes(f"{base}/metadata/1.root.json", _CONFIG.root_max_length)
    except tuf_errors.DownloadHTTPError as exc:
        if exc.status_code not in (403, 404):
            raise
        raise ReleaseError(
            f"The published repository at {source} has no metadata/1.root.json: nothing is "
            "published there.",
            "check COMMONSHELF_PUBLISHED_URL/_DIR; the first release is published once from the "
            "publishing host (with neither set) and its public/ uploaded there.",
        ) from None


def _ahead(public: Path, stage: Path, origin: Origin) -> str | None:
    """Why public/ must not be replaced: it holds a timestamp newer than the published one
    (a release not uploaded yet, or an old copy served), or another state of the same version
    (a fork: e.g. targets that differ under one timestamp version)."""
    try:
        data = (public / "metadata" / "timestamp.json").read_bytes()
        held = Metadata[Timestamp].from_bytes(data).signed.version
    except (OSError, DeserializationError, ValueError, TypeError):
        return None  # nothing (readable) to keep
    if held > origin.timestamp_version:
        return f"timestamp version {held}, newer than the published {origin.timestamp_version}"
    if held == origin.timestamp_version:  # the same state, file for file?
        for staged in sorted((stage / "metadata").iterdir()):
            mine = public / "metadata" / staged.name
            if mine.is_file() and mine.read_bytes() != staged.read_bytes():
                return f"another {staged.name} than the published one (timestamp version {held})"
    return None


def _replace(public: Path, stage: Path) -> None:
    """Put `stage` where public/ is (each a rename on one filesystem)."""
    with tempfile.TemporaryDirectory(prefix=".public-replaced-", dir=public.parent) as old:
        if public.exists():
            os.rename(public, Path(old) / "public")
        os.rename(stage, public)


def sync(settings: Settings, say: Say = quiet) -> Origin | None:
    """Make public/ the verified published repository; None when none is configured (the
    local public/ is then used as it is)."""
    source = settings.published_source
    if source is None:
        return None
    try:
        anchor = settings.trust_anchor.read_bytes()
    except OSError:
        raise TrustError(
            f"{source} is configured as the published repository, but the pinned root "
            f"{settings.trust_anchor} is missing.",
            "commit the published repository's 1.root.json, obtained out of band, as "
            "shared/trust/root.json.",
        ) from None
    public = settings.public_dir
    public.parent.mkdir(parents=True, exist_ok=True)
    same = settings.published_dir is not None and settings.published_dir == public.resolve()
    pinned = settings.trust_anchor.relative_to(settings.root)
    say(f"Verifying the published repository at {source} against the pinned root {pinned}")
    with tempfile.TemporaryDirectory(prefix=".public-origin-", dir=public.parent) as work:
        stage = Path(work) / "public"
        origin = verify(source, anchor, stage, reuse=public if public.is_dir() else None)
        if not same:
            ahead = _ahead(public, stage, origin)
            if ahead is not None:
                raise ReleaseError(
                    f"{public} holds {ahead} at {source}.",
                    "upload public/ to where the repository is published if it holds a "
                    "release not uploaded yet, or purge the cache serving an old copy; remove "
                    "public/ only if it holds nothing to keep.",
                )
            _replace(public, stage)
    expired = f"; expired (this publish re-signs them): {', '.join(origin.expired)}"
    expired = expired if origin.expired else ""
    say(f"Extending the published repository ({origin.describe()}{expired})")
    return origin


def base_catalog(settings: Settings, origin: Origin | None) -> Catalog:
    """The catalogue a release adds to: the published one when a repository is configured
    (what installations hold, even if the committed copy lags behind), else catalog.json.
    A committed catalog.json listing a version the published one lacks is refused: the
    published copy is stale, or that version was never published."""
    committed = Catalog.load(settings.catalog_path)
    if origin is None or origin.catalog is None:
        return committed
    published = Catalog.from_bytes(origin.catalog, f"{CATALOG} from {origin.source}")
    missing = [
        f"{app} {version}"
        for app, entry in sorted(committed.apps.items())
        for version, released in sorted(entry.versions.items())
        if (found := published.versions(app).get(version)) is None
        or found.content_hash != released.content_hash
    ]
    if missing:
        raise ReleaseError(
            f"{settings.catalog_path} lists {', '.join(missing[:5])}"
            f"{' and more' if len(missing) > 5 else ''}, which the published repository at "
            f"{origin.source} does not (or with other content).",
            "purge the cache serving an old copy, or upload the public/ those versions were "
            "released into; restore catalog.json from the published catalogue otherwise.",
        )
    return published
