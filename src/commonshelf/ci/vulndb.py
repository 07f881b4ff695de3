"""The vulnerability DB the production way: an OCI artifact in the project's own registry.

trivy downloads its DB from an OCI repository (`--db-repository`). In production an
operator mirrors the upstream DB into the project's registry (`invoke vulndb --mirror-from
REF`); here, with no upstream reachable, `invoke vulndb` builds the DB from the readable
advisory files in `shared/advisories/` and pushes it as the same kind of artifact. Every
scan then lets trivy pull it from that repository (`pull`) into the shared cache that each
scan worker copies (`scan.worker_cache`). A DB that is missing, unreadable or holds no
advisories is a clear failure, never a silent pass; `allow_empty` (for local experiments)
says so in the evidence, and such evidence is never released.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import requests

from commonshelf.ci import scan
from commonshelf.ci.trivydb import DB_SCHEMA_VERSION, Advisory, has_advisories, write_trivy_db
from commonshelf.platform import trivy
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import ScanError
from commonshelf.platform.fsutil import write_bytes_atomic
from commonshelf.platform.loaders import ADVISORIES, InputError, load_yaml
from commonshelf.platform.settings import Settings

TAG = str(DB_SCHEMA_VERSION)  # trivy asks for the tag named after its DB schema version
LAYER_MEDIA_TYPE = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
SOURCE = "source.json"  # beside trivy.db: where the DB came from (copied to each worker)
HTTP_TIMEOUT = 30
# trivy's upstream DB is about 70 MiB compressed (800 MiB open): a mirror serving far more
# is refused before trivy downloads it
MAX_DB_BYTES = 1024 * 1024 * 1024


class Layer(msgspec.Struct, frozen=True):
    digest: str
    size: int


class Manifest(msgspec.Struct, frozen=True):
    layers: tuple[Layer, ...] = ()


class AdvisoryRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One advisory as a person writes it in shared/advisories/*.yml."""

    id: str
    package: str  # Debian *source* package (nginx, not nginx-light)
    fixed: str  # the Debian version that fixes it
    severity: str
    title: str = ""
    platform: str = "debian 12"


class AdvisoryFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    updated: date  # YYYY-MM-DD: the DB's build time, so a rebuild keeps the artifact's digest
    advisories: tuple[AdvisoryRecord, ...] = ()


class DbSource(msgspec.Struct, frozen=True, kw_only=True):
    """Which artifact the cached DB was pulled from (`db/source.json`)."""

    repository: str
    digest: str  # the OCI manifest digest
    built: str  # the DB's UpdatedAt
    pulled: str
    has_advisories: bool

    def describe(self) -> str:
        what = f"{self.repository}@{self.digest[:19]}… built {self.built}"
        if not self.has_advisories:
            what += " (EMPTY, allowed by --allow-empty-db: vulnerabilities were not checked)"
        return what


def is_loopback(repository: str) -> bool:
    """Plain HTTP only to a registry on loopback (the embedded default)."""
    host = repository.split("/", 1)[0].split(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "::1")


def _split(repository: str) -> tuple[str, str]:
    host, _, name = repository.partition("/")
    if not name:
        raise ScanError(
            f"'{repository}' is not a repository (HOST/NAME).",
            "set COMMONSHELF_TRIVY_DB_REPOSITORY to e.g. 127.0.0.1:5000/commonshelf/trivy-db.",
        )
    return host, name


# ---- the readable advisories and the artifact built from them


def load_advisories(folder: Path) -> tuple[list[Advisory], datetime]:
    """Every advisory in `folder/*.yml` and the newest `updated` date among the files."""
    found: list[Advisory] = []
    newest = datetime(2000, 1, 1, tzinfo=UTC)
    for path in sorted(folder.glob("*.yml")):
        try:
            parsed = msgspec.convert(load_yaml(path, ADVISORIES), AdvisoryFile)
            updated = datetime.combine(parsed.updated, datetime.min.time(), UTC)
        except InputError as exc:
            raise ScanError(exc.what, exc.fix) from None
        except (msgspec.ValidationError, ValueError) as exc:
            raise ScanError(
                f"{path}: {exc}.",
                "each file has `updated: YYYY-MM-DD` and `advisories:` entries with id, "
                "package, fixed, severity (see shared/advisories/README.md).",
            ) from None
        newest = max(newest, updated)
        found += [
            Advisory(a.package, a.id, a.fixed, a.severity, a.title) for a in parsed.advisories
        ]
    return found, newest


def build_artifact(advisories: list[Advisory], built: datetime, out: Path) -> Path:
    """`out/db.tar.gz` (trivy.db + metadata.json), byte-identical for the same input."""
    with tempfile.TemporaryDirectory() as work:
        try:
            write_trivy_db(Path(work), advisories, built=built)
        except ValueError as exc:
            raise ScanError(f"An advisory is invalid: {exc}.", "fix shared/advisories/.") from None
        buffer = io.BytesIO()
        with (
            gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped,
            tarfile.open(fileobj=zipped, mode="w") as tar,
        ):
            for name in ("trivy.db", "metadata.json"):
                data = (Path(work) / "db" / name).read_bytes()
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
    artifact = out / "db.tar.gz"
    write_bytes_atomic(artifact, buffer.getvalue())
    return artifact


# ---- the registry


def remote_layer(repository: str) -> tuple[str, str] | None:
    """(manifest digest, layer digest) of `repository:TAG`, None when there is none."""
    host, name = _split(repository)
    scheme = "http" if is_loopback(repository) else "https"
    url = f"{scheme}://{host}/v2/{name}/manifests/{TAG}"
    try:
        answer = requests.get(url, headers={"Accept": MANIFEST_TYPES}, timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        raise ScanError(
            f"The registry of {repository} did not answer ({type(exc).__name__}).",
            "start it (`./shelf pipeline` starts the local one) and scan again.",
        ) from None
    if answer.status_code == 404:
        return None
    if answer.status_code != 200 or len(answer.content) > 1024 * 1024:
        raise ScanError(
            f"The registry answered {answer.status_code} for {repository}:{TAG}.",
            "check the repository name (COMMONSHELF_TRIVY_DB_REPOSITORY) and the registry.",
        )
    try:
        manifest = msgspec.json.decode(answer.content, type=Manifest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ScanError(
            f"{repository}:{TAG} has no readable OCI manifest ({exc}).",
            "push the DB again (`./shelf vulndb`).",
        ) from None
    if len(manifest.layers) != 1 or manifest.layers[0].size > MAX_DB_BYTES:
        raise ScanError(
            f"{repository}:{TAG} is not one DB layer under {MAX_DB_BYTES >> 20} MiB "
            f"({len(manifest.layers)} layers, {sum(x.size for x in manifest.layers)} bytes).",
            "push trivy's DB artifact there (`./shelf vulndb`, or mirror the upstream one).",
        )
    digest = answer.headers.get("Docker-Content-Digest") or (
        "sha256:" + hashlib.sha256(answer.content).hexdigest()
    )
    return digest, manifest.layers[0].digest


def _client(repository: str) -> object:
    import oras.client

    host, _ = _split(repository)
    return oras.client.OrasClient(hostname=host, insecure=is_loopback(repository))


def push(artifact: Path, repository: str) -> str:
    """Push `artifact` as trivy's DB layer to `repository:TAG`; the manifest digest."""
    client = _client(repository)
    try:
        client.push(  # type: ignore[attr-defined]
            target=f"{repository}:{TAG}",
            files=[f"{artifact}:{LAYER_MEDIA_TYPE}"],
            disable_path_validation=True,
        )
    except Exception as exc:  # oras raises requests' and its own errors alike
        raise ScanError(
            f"Pushing the vulnerability DB to {repository} failed: {str(exc)[:200]}.",
            "check that the registry runs and accepts pushes.",
        ) from None
    found = remote_layer(repository)
    if found is None:
        raise ScanError(f"{repository}:{TAG} is missing right after the push.", "push again.")
    return found[0]


def mirror(source: str, repository: str) -> str:
    """Copy the DB artifact `source` (REPOSITORY[:TAG]) into `repository:TAG`: the one step
    an operator runs to take the upstream DB into the project's registry."""
    import oras.client

    ref = source if ":" in source.rsplit("/", 1)[-1] else f"{source}:{TAG}"
    host, _ = _split(ref)
    puller = oras.client.OrasClient(hostname=host, insecure=is_loopback(ref))
    with tempfile.TemporaryDirectory() as work:
        try:
            files = puller.pull(target=ref, outdir=work)
        except Exception as exc:
            raise ScanError(
                f"Pulling {ref} failed: {str(exc)[:200]}.", "check the source reference."
            ) from None
        tarballs = [Path(f) for f in files if str(f).endswith(".tar.gz")]
        if len(tarballs) != 1:
            raise ScanError(f"{ref} holds no single DB tarball.", "mirror trivy's DB artifact.")
        artifact = Path(work) / "db.tar.gz"
        tarballs[0].rename(artifact)
        return push(artifact, repository)


def publish_bundled(settings: Settings) -> str:
    """Build the DB from shared/advisories and push it unless the registry already holds
    exactly that artifact; the manifest digest."""
    advisories, built = load_advisories(settings.shared_dir / "advisories")
    with tempfile.TemporaryDirectory() as work:
        artifact = build_artifact(advisories, built, Path(work))
        layer = "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()
        found = remote_layer(settings.vulndb_repository)
        if found is not None and found[1] == layer:
            return found[0]
        return push(artifact, settings.vulndb_repository)


# ---- pulling it the way trivy does


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".pull.lock").open("wb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def cached_source(cache: Path) -> DbSource | None:
    try:
        return msgspec.json.decode((cache / "db" / SOURCE).read_bytes()[:65536], type=DbSource)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def _record_source(db_dir: Path, source: DbSource) -> DbSource:
    """Write `source.json` into a DB folder (read back by `cached_source`)."""
    write_bytes_atomic(db_dir / SOURCE, msgspec.json.encode(source))
    return source


def pull(cache: Path, repository: str, *, allow_empty: bool = False) -> DbSource:
    """Let trivy download `repository:TAG` into `cache/db` (unless that digest is there)."""
    with _locked(cache):
        found = remote_layer(repository)
        if found is None:
            raise ScanError(
                f"No vulnerability DB at {repository}:{TAG}: a scan without one would pass blind.",
                "run `./shelf vulndb` (builds it from shared/advisories and pushes it) or "
                "mirror the upstream DB (`./shelf vulndb --mirror-from REF`).",
            )
        held = cached_source(cache)
        if (
            held is not None
            and held.repository == repository
            and held.digest == found[0]
            and (cache / "db" / "trivy.db").is_file()
            and (held.has_advisories or allow_empty)
        ):
            return held
        staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=cache))
        try:
            trivy.download_db(staging, repository, insecure=is_loopback(repository))
            db = staging / "db" / "trivy.db"
            try:
                full = has_advisories(db)
            except (OSError, ValueError) as exc:
                raise ScanError(
                    f"The vulnerability DB at {repository}:{TAG} ({found[0][:19]}…) is not a "
                    f"trivy DB: {exc}.",
                    "push a good one (`./shelf vulndb`, or mirror the upstream DB again).",
                ) from None
            if not full and not allow_empty:
                raise ScanError(
                    f"The vulnerability DB at {repository}:{TAG} holds no advisories: a scan "
                    "with it would pass blind.",
                    "push one with advisories (`./shelf vulndb`); for a local experiment only, "
                    "scan with --allow-empty-db (the evidence says so and is never released).",
                )
            metadata = msgspec.json.decode((staging / "db" / "metadata.json").read_bytes())
            source = DbSource(
                repository=repository,
                digest=found[0],
                built=str(metadata.get("UpdatedAt", "")) if isinstance(metadata, dict) else "",
                pulled=now_iso(),
                has_advisories=full,
            )
            _record_source(staging / "db", source)
            scan.swap_in(staging / "db", cache / "db")
            return source
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def ready(settings: Settings, *, allow_empty: bool = False) -> DbSource:
    """The DB every scan of this workspace uses: the bundled advisories published to the
    project's registry (unless COMMONSHELF_TRIVY_DB_REPOSITORY names a mirror), then pulled
    by trivy into the shared cache."""
    if not settings.trivy_db_repository:
        publish_bundled(settings)
    repository = settings.vulndb_repository
    if allow_empty and remote_layer(repository) is None:  # a local experiment with no DB
        with _locked(settings.trivy_cache):
            write_trivy_db(settings.trivy_cache)
            empty = DbSource(
                repository="", digest="", built="", pulled=now_iso(), has_advisories=False
            )
            return _record_source(settings.trivy_cache / "db", empty)
    return pull(settings.trivy_cache, repository, allow_empty=allow_empty)
