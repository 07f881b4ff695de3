"""The signed catalogue, installation side: the only way the agent reads the repository.

The root of trust is pinned at subscription time (never trusted on first use
from the network). Every read goes through the stock `tuf.ngclient.Updater`:
metadata is refreshed and verified, and each target is downloaded and checked
against its signed length and hash before anyone sees its bytes. Newer roots
the updater accepts are kept in its `root_history/`, so root rotation works
across runs while the pinned root stays the anchor.

Polls are cheap. Verified metadata stays in `metadata/`, so a refresh with nothing new
asks for two files: the next root version (answered 404) and `timestamp.json`; python-tuf
reloads snapshot and targets from disk when the timestamp still names them. A target
already held in `targets/` whose bytes match its signed length and hash is returned
without a download. One `Subscription` refreshes once, successful or not (`force=True`
polls again): a command reads all its targets through one, so it sees one consistent
repository state, fetched once.

A misbehaving repository costs bounded time and bytes and changes nothing: each request has
the agent's timeout (`COMMONSHELF_FETCH_TIMEOUT`, default 15 s; urllib3 retries a silent
server three times, so a file costs at most four timeouts), a connection cut mid-file is
refused, nothing is kept until it verifies, and metadata sizes are capped (`_CONFIG`:
python-tuf's defaults, written out so that a change is a decision; they are far above our
needs: a ~0.5 KB timestamp, a one-entry snapshot, ~2 KB roots, and targets.json growing
~0.2 KB per released version, ~0.2 MB at 1,000 apps). So a hostile mirror can make one poll
download ~8 MB at most; each target is capped at its signed length. A server that never
stops sending (an endless or dripping stream) is cut when the file has taken four timeouts
(`refusals.FILE_TIMEOUTS`): python-tuf reads 400 KB at a time, so a drip would otherwise
never trip the read timeout. What the operator is told is written in `refusals.py`.

Time: python-tuf compares each role's `expires` with this machine's clock. A clock far
ahead makes valid metadata look expired (the error names the clock). A clock far behind
makes nothing expire: TUF has no not-before time, so a slow clock delays the detection of
expired metadata by its error, widening the window of a freeze attack (a mirror serving an
old, still-signed state); the timestamp's short lifetime (1 day by default) bounds it otherwise.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, TargetFile
from tuf.api.serialization import DeserializationError
from tuf.ngclient import Updater, UpdaterConfig, Urllib3Fetcher
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as ReadTimeout

from commonshelf.installation.refusals import (
    FILE_TIMEOUTS,
    METADATA,
    CutShort,
    Endless,
    Read,
    refusal,
)
from commonshelf.platform.errors import CommonshelfError, TrustError
from commonshelf.platform.fsutil import write_bytes_atomic, write_json_atomic
from commonshelf.platform.loaders import STATE, InputError, load_json

PINNED = "pinned-root.json"
TIMEOUT_VARIABLE = "COMMONSHELF_FETCH_TIMEOUT"
DEFAULT_TIMEOUT = 15  # seconds per request (connect, and each wait for bytes)

_CONFIG = UpdaterConfig(
    root_max_length=512_000,
    timestamp_max_length=16_384,
    snapshot_max_length=2_000_000,
    targets_max_length=5_000_000,
    app_user_agent="commonshelf-agent",
)


def fetch_timeout() -> int:
    """Seconds each request may wait: COMMONSHELF_FETCH_TIMEOUT, else 15."""
    raw = os.environ.get(TIMEOUT_VARIABLE, "").strip() or str(DEFAULT_TIMEOUT)
    if not raw.isdigit() or not 1 <= int(raw) <= 600:
        raise CommonshelfError(
            f"{TIMEOUT_VARIABLE}={raw!r} is not a whole number of seconds from 1 to 600.",
            f"unset it (default {DEFAULT_TIMEOUT} s) or set e.g. {TIMEOUT_VARIABLE}=30.",
        )
    return int(raw)


class _Fetcher(Urllib3Fetcher):
    """python-tuf's urllib3 fetcher with the agent's timeout; a connection cut mid-file is a
    DownloadError (urllib3's ProtocolError would escape python-tuf), a refused one is not
    called slow, and each metadata role's last bytes are kept to name an expiry (and the
    last file asked for, to name it in a refusal)."""

    def __init__(self, timeout: int) -> None:
        super().__init__(socket_timeout=timeout, app_user_agent=_CONFIG.app_user_agent)
        self.timeout = timeout
        self.metadata: dict[str, bytes] = {}
        self.asked = ""

    def fetch(self, url: str) -> Iterator[bytes]:
        self.asked = url.rpartition("/")[2]
        try:
            return self._read(url, super().fetch(url))
        except tuf_errors.SlowRetrievalError as exc:  # urllib3 files "refused" under timeouts
            reason = getattr(exc.__cause__, "reason", None)
            if isinstance(reason, NewConnectionError):  # e.g. "[Errno 111] Connection refused"
                raise tuf_errors.DownloadError(str(reason).rpartition(": ")[2]) from exc
            raise

    def _read(self, url: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        name = url.rpartition("/")[2]
        keep = "/metadata/" in url and name.endswith(".json")
        got: list[bytes] = []
        try:
            for chunk in chunks:
                got += [chunk] if keep else []
                yield chunk
        except tuf_errors.DownloadError:
            raise
        except Exception as exc:  # urllib3's ProtocolError and kin: the stream broke
            raise CutShort(str(exc.args[0] if exc.args else exc)) from exc
        if keep:
            self.metadata[re.sub(r"^\d+\.", "", name)] = b"".join(got)

    def _chunks(self, response: BaseHTTPResponse) -> Iterator[bytes]:
        """The body as it arrives (python-tuf's own reads wait for 400 KB, which a server
        dripping bytes never sends), cut when the file has taken FILE_TIMEOUTS timeouts."""
        budget = FILE_TIMEOUTS * self.timeout
        deadline = time.monotonic() + budget
        whole = False
        try:
            while chunk := response.read1(self.chunk_size):
                if time.monotonic() > deadline:
                    raise Endless(f"still sending after {budget} s")
                yield chunk
            whole = True
        except ReadTimeout as exc:
            raise tuf_errors.SlowRetrievalError from exc
        finally:
            if not whole:  # a body left unread (cut, or too long): close, never pool it
                response.close()
            response.release_conn()


def _check_root(root_bytes: bytes) -> Metadata[Root]:
    """A root metadata file, self-signed to its threshold, or a TrustError."""
    try:
        root = Metadata[Root].from_bytes(root_bytes)
    except (DeserializationError, ValueError, TypeError) as exc:
        raise TrustError(
            f"The given root is not TUF root metadata ({exc}).",
            "pass the repository's 1.root.json, obtained out of band.",
        ) from None
    try:
        root.signed.verify_delegate(Root.type, root.signed_bytes, root.signatures)
    except tuf_errors.UnsignedMetadataError as exc:
        raise TrustError(
            f"The given root is not signed by its own root keys ({exc}).",
            "obtain an untampered 1.root.json from the publisher.",
        ) from None
    return root


class Subscription:
    """One installation's view of one repository, rooted at `home`."""

    def __init__(self, home: Path, repository_url: str):
        self.home = home
        self.url = repository_url.rstrip("/")
        self._updater: Updater | None = None
        self._fetcher: _Fetcher | None = None
        self._failed: TrustError | None = None  # a failed refresh is not retried unforced

    @property
    def metadata_dir(self) -> Path:
        return self.home / "metadata"

    @property
    def targets_dir(self) -> Path:
        return self.home / "targets"

    @classmethod
    def create(
        cls,
        home: Path,
        repository_url: str,
        root_bytes: bytes,
        *,
        force: bool = False,
        verify: bool = False,
    ) -> Subscription:
        """Pin `root_bytes` as the trust anchor for `repository_url`. With `verify`, the
        repository must verify under it, or the home is left exactly as it was found (a
        refused root never stays pinned)."""
        if not verify:
            return cls._pin(home, repository_url, root_bytes, force=force)
        with tempfile.TemporaryDirectory(prefix=".init-", dir=home.parent) as saved:
            before = Path(saved) / "home"
            if home.exists():
                shutil.copytree(home, before, symlinks=True)
            try:
                subscription = cls._pin(home, repository_url, root_bytes, force=force)
                subscription.refresh()
            except BaseException:
                shutil.rmtree(home, ignore_errors=True)
                if before.exists():
                    before.rename(home)
                raise
        return subscription

    @classmethod
    def _pin(
        cls, home: Path, repository_url: str, root_bytes: bytes, *, force: bool
    ) -> Subscription:
        _check_root(root_bytes)
        pinned = home / PINNED
        if pinned.exists() and pinned.read_bytes() != root_bytes:
            if not force:
                raise TrustError(
                    f"{home} already trusts a different root for its repository.",
                    "pass --force to replace the trusted root (only with a root obtained "
                    "out of band).",
                )
            shutil.rmtree(home / "metadata", ignore_errors=True)  # the old chain of trust
        write_bytes_atomic(pinned, root_bytes)
        write_json_atomic(home / "subscription.json", {"repository": repository_url.rstrip("/")})
        return cls(home, repository_url)

    @classmethod
    def open(cls, home: Path) -> Subscription:
        none = TrustError(
            f"{home} holds no subscription.",
            "run `commonshelf init --repository URL --root ROOT.json`.",
        )
        try:
            data = load_json(home / "subscription.json", STATE)
        except InputError:
            raise none from None
        if not isinstance(data, dict) or not isinstance(data.get("repository"), str):
            raise none
        return cls(home, data["repository"])

    def _new_updater(self) -> Updater:
        try:
            pinned = (self.home / PINNED).read_bytes()
        except OSError:
            raise TrustError(
                f"{self.home / PINNED} is missing.",
                "run `commonshelf init` again with the repository's root.",
            ) from None
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self._fetcher = _Fetcher(fetch_timeout())
        return Updater(
            metadata_dir=str(self.metadata_dir),
            metadata_base_url=f"{self.url}/metadata/",
            target_base_url=f"{self.url}/targets/",
            target_dir=str(self.targets_dir),
            fetcher=self._fetcher,
            config=_CONFIG,
            bootstrap=pinned,
        )

    @property
    def refreshed(self) -> bool:
        """Whether this object has verified the repository's metadata already."""
        return self._updater is not None

    def refresh(self, *, force: bool = False) -> None:
        """Fetch and verify root, timestamp, snapshot and targets metadata, once per object:
        later calls (and `fetch`) reuse that state; `force` polls the repository again."""
        if self._updater is None or force:
            self._refreshed(force=force)

    def _refreshed(self, *, force: bool = False) -> Updater:
        """A new updater, its metadata refreshed and verified (kept for `fetch`). python-tuf
        allows one refresh per updater: polling again needs a new one. A refresh that failed
        fails again at once (a broken repository costs one command one poll)."""
        if self._failed is not None and not force:
            raise self._failed
        updater = self._new_updater()
        try:
            with self._translate(METADATA):
                updater.refresh()
        except TrustError as failed:
            self._failed = failed
            raise
        self._updater, self._failed = updater, None
        return updater

    def fetch(self, target_path: str) -> bytes:
        """The verified bytes of a target, refreshing first if this object has not.

        The copy held in `targets/` is returned as it is when its bytes match the signed
        length and hashes (python-tuf's `find_cached_target` check, made here on the bytes
        returned, so nothing can change between check and read); otherwise the target is
        downloaded, verified, and only then replaces the local copy.
        """
        updater = self._updater if self._updater is not None else self._refreshed()
        with self._translate(target_path):
            info = updater.get_targetinfo(target_path)
            if info is None:
                raise TrustError(
                    f"{target_path} is not a signed target of {self.url}.",
                    "check the name, or republish the catalogue.",
                )
            held = self._held(info)
            if held is not None:
                return held
            self.targets_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.targets_dir) as work:
                downloaded = Path(
                    updater.download_target(info, filepath=str(Path(work) / "download"))
                )
                data = downloaded.read_bytes()
        write_bytes_atomic(self.targets_dir / target_path, data)
        return data

    def _held(self, info: TargetFile) -> bytes | None:
        """The local copy of a target if it is exactly the signed one, else None."""
        try:
            data = (self.targets_dir / info.path).read_bytes()
            info.verify_length_and_hashes(data)
        except (OSError, tuf_errors.LengthOrHashMismatchError):
            return None
        return data

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """Turn python-tuf's exceptions into one sentence that names the file and the fix."""
        try:
            yield
        except TrustError:
            raise
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError, OSError) as exc:
            fetcher = self._fetcher or _Fetcher(fetch_timeout())
            read = Read(
                what, self.url, fetcher.timeout, fetcher.asked, fetcher.metadata, self.metadata_dir
            )
            refused = refusal(exc, read)
            if refused is None:
                raise
            raise refused from None
