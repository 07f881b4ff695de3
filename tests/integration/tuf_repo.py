"""A real signed repository on loopback and a real installation subscribed to it: the ground
the attack suite (`test_tuf_attacks.py`) stands on.

The repository is written by the release job's own `Publisher`; an attack then rewrites its
files with python-tuf's Metadata API, as a hostile mirror (or the thief of one key) would,
and `Mirror` serves it with the catalogue server's handler (`commonshelf.catalogue.server`),
or sends a file that never ends. The installation is the one `commonshelf init` makes: the
pinned 1.root.json verified against the repository at once and the catalogue fetched
(`Agent.init`, without the proxy it then deploys), plus an app record as the deployer
writes it, so the real `commonshelf` command runs against it without Docker.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import (
    AppEntry,
    TargetRef,
    VersionEntry,
)
from commonshelf.catalogue.server import StaticHandler
from commonshelf.catalogue.signing import Publisher, PublishResult, SigningKeys
from commonshelf.catalogue.signing import load_or_create_keys as _keys
from commonshelf.installation.subscription import Subscription

from ..entries import seat_installation, version_entry

APP = "web"
CATALOG = "catalog.json"
SERIALIZER = JSONSerializer(compact=False)


def version_of(release: int) -> str:
    return f"1.{release}.0+1"


def sbom_path(release: int) -> str:
    return f"sbom/{APP}/{version_of(release)}/app.cdx.json"


def sbom(release: int) -> bytes:
    return b'{"bomFormat": "CycloneDX", "specVersion": "1.5", "release": %d}' % release


def catalogue(releases: int) -> bytes:
    """A valid catalogue (what `commonshelf apps` reads) with `releases` versions of one app,
    each naming its compose file and SBOM as TUF targets."""

    def entry(release: int) -> VersionEntry:
        data = sbom(release)
        ref = TargetRef(
            path=sbom_path(release), sha256=hashlib.sha256(data).hexdigest(), length=len(data)
        )
        return version_entry(
            content_hash=f"h{release}",
            compose=f"apps/{APP}/{version_of(release)}.compose.yml",
            sboms={"app": ref},
        )

    versions = {version_of(r): entry(r) for r in range(1, releases + 1)}
    web = AppEntry(title="Web", description="A web app", category="web", versions=versions)
    return Catalog(apps={APP: web}).to_bytes()


def release_targets(releases: int) -> dict[str, bytes]:
    """Every target of the repository after `releases` releases."""
    targets = {CATALOG: catalogue(releases)}
    for release in range(1, releases + 1):
        targets[f"apps/{APP}/{version_of(release)}.compose.yml"] = b"services: {}\n"
        targets[sbom_path(release)] = sbom(release)
    return targets


@dataclass
class Repository:
    """`public/` as the release job writes it, with the keys that signed it."""

    public: Path
    keys: SigningKeys
    releases: int = 0

    @classmethod
    def create(cls, folder: Path) -> Repository:
        repository = cls(folder / "public", _keys(folder / "keys", env={})[0])
        repository.release()
        return repository

    def release(self) -> PublishResult:
        """The next release: one more version of the app, a new catalogue, all re-signed."""
        self.releases += 1
        return Publisher(self.public, self.keys).publish(release_targets(self.releases))

    def path(self, name: str) -> Path:
        return self.public / "metadata" / name

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def signer(self, role: str) -> CryptoSigner:
        return self.keys.signers[role]

    def resign(
        self,
        name: str,
        change: Callable[[Any], None],
        signers: list[Signer],
        *,
        to: str | None = None,
    ) -> bytes:
        """Metadata `name` with its signed part changed by `change` (which sees the Signed
        object: Root, Timestamp…), signed by exactly `signers`, written as `to` (default:
        in place). Returns the bytes written."""
        metadata: Metadata[Any] = Metadata.from_bytes(self.read(name))
        change(metadata.signed)
        metadata.signatures.clear()
        for signer in signers:
            metadata.sign(signer, append=True)
        data = metadata.to_bytes(SERIALIZER)
        self.path(to or name).write_bytes(data)
        return data

    def root(self, version: int) -> Metadata[Root]:
        return Metadata[Root].from_bytes(self.read(f"{version}.root.json"))

    def target_file(self, target_path: str) -> Path:
        """Where the current release stores a target (consistent snapshots: under its hash)."""
        timestamp = Metadata[Timestamp].from_bytes(self.read("timestamp.json")).signed
        version = timestamp.snapshot_meta.version
        snapshot = Metadata[Snapshot].from_bytes(self.read(f"{version}.snapshot.json")).signed
        targets_version = snapshot.meta["targets.json"].version
        signed: Targets = (
            Metadata[Targets].from_bytes(self.read(f"{targets_version}.targets.json")).signed
        )
        info = signed.targets[target_path]
        folder, _, name = target_path.rpartition("/")
        return self.public / "targets" / folder / f"{info.hashes['sha256']}.{name}"


Stream = Literal["flood", "drip"]


@dataclass
class Mirror:
    """A loopback HTTP server for `public/`: the catalogue server's handler, except for the
    paths in `endless`, answered with a body that never ends: `flood` (64 KiB writes as
    fast as the client reads) or `drip` (one byte every 50 ms: never silent long enough for
    a read timeout). `hung_up` holds the endless paths whose client closed the connection."""

    public: Path
    endless: dict[str, Stream] = field(default_factory=dict)
    hung_up: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def handler(self, *args: Any) -> StaticHandler:
        mirror = self

        class Handler(StaticHandler):
            def do_GET(self) -> None:
                stream = mirror.endless.get(self.path)
                if stream is None:
                    super().do_GET()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                with contextlib.suppress(OSError):  # the client hung up: what we wait for
                    while not mirror._stop.is_set():
                        self.wfile.write(b" " * (65536 if stream == "flood" else 1))
                        self.wfile.flush()
                        if stream == "drip":
                            time.sleep(0.05)
                    return
                with mirror._changed:
                    mirror.hung_up.add(self.path)
                    mirror._changed.notify_all()
                self.close_connection = True

        return Handler(*args, directory=str(self.public))

    def wait_hung_up(self, path: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: path in self.hung_up, timeout)

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        """Serve on a free loopback port in a thread; yields the base URL."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            self._stop.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@dataclass(frozen=True)
class Installation:
    """An installation's home: `tuf/` (its trust and the targets it holds), its config and
    the record of the app it runs."""

    home: Path
    url: str

    @classmethod
    def init(cls, home: Path, url: str, root: bytes, *, runs: int = 1) -> Installation:
        """What `commonshelf init --root 1.root.json` does (Agent.init): pin the root,
        verify the repository under it at once, fetch the catalogue, write the config.
        Then the app record the deployer writes for `install web --version 1.<runs>.0+1`."""
        home.mkdir(parents=True, exist_ok=True)
        subscription = Subscription.create(home / "tuf", url, root, verify=True)
        subscription.fetch(CATALOG)
        seat_installation(home, url, APP, version_of(runs))
        return cls(home, url)

    def poll(self) -> bytes:
        """What each command's first read does: refresh, then the verified catalogue."""
        return Subscription.open(self.home / "tuf").fetch(CATALOG)

    def trusted(self) -> dict[str, bytes]:
        """Every file of the trusted state (relative path -> bytes; a symlink -> its target),
        `tuf/` and `apps/`: what an attack must leave byte for byte as it was."""
        found: dict[str, bytes] = {}
        for top in ("tuf", "apps"):
            for path in sorted((self.home / top).rglob("*")):
                name = str(path.relative_to(self.home))
                if path.is_symlink():
                    found[name] = b"-> " + os.readlink(path).encode()
                elif path.is_file():
                    found[name] = path.read_bytes()
        return found

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real `commonshelf --home HOME ARGS` process (in this process's environment)."""
        script = Path(sys.executable).with_name("commonshelf")
        start = (
            [str(script)]
            if script.exists()
            else [sys.executable, "-m", "commonshelf.installation.cli"]
        )
        return subprocess.run(
            [*start, "--home", str(self.home), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
