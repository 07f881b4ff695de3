"""Bad input (issue 13): attacks on the signed catalogue, each refused with one clear line
while the installation's trusted state stays exactly as it was.

The ground is real (`tuf_repo.py`): a repository written by the release job's `Publisher`,
served on 127.0.0.1 by the catalogue server's handler; an installation made from
1.root.json as `commonshelf init` makes it, holding the verified catalogue and an app
record. Each attack rewrites the served files with python-tuf's Metadata API (or serves a
file that never ends); the installation then polls twice, in process (a `TrustError`, whose
one line names the file, the cause and a fix, in our words rather than python-tuf's) and as
the real `commonshelf` process an operator runs (exit 2, that line on stderr). Afterwards
every file under HOME/tuf/ (trusted metadata, root history, held targets) and HOME/apps/
is byte for byte what it was, except where the attacker passed genuine, newer signed
metadata along (it is stored: it is the publisher's; each such case says which file).

Where each attack of the issue is tested:

1. tampered target: `test_a_tampered_target_is_refused` (a new release's catalogue; an
   SBOM never held); also test_tuf_http.py (a held copy stays in use), test_sbom_download.py
   and test_poll_cost.py (a held copy that changed on disk is fetched again).
2. rolled-back timestamp or snapshot: `test_a_rollback_is_refused`; with an app running on
   Swarm, tests/faults/test_catalogue_faults.py ("replayed timestamp").
3. expired timestamp: `test_an_expired_timestamp_is_refused` (with held state); at init,
   test_tuf_http.py; a wrong clock, tests/faults/test_catalogue_faults.py.
4. mix-and-match: `test_targets_from_another_snapshot_are_refused`: another version's
   targets, and the same version of targets metadata signed with other content (a fork of
   the chain), which the publisher's snapshot refuses by length and hash.
5. root below threshold: `test_a_root_below_its_threshold_is_refused`.
6. root signed only by a revoked key: `test_a_root_signed_by_a_revoked_key_is_refused`.
7. oversized metadata: `test_oversized_metadata_is_refused` (N.root.json, timestamp.json
   with held state); at init, test_tuf_http.py; tests/faults ("oversized timestamp").
8. endless data stream: `test_an_endless_stream_is_cut` (metadata and target, flooded or
   dripped below the read timeout).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, Timestamp

from commonshelf.installation.refusals import FILE_TIMEOUTS
from commonshelf.platform.errors import TrustError

from .tuf_repo import (
    CATALOG,
    Installation,
    Mirror,
    Repository,
    sbom,
    sbom_path,
)

# python-tuf's own wording, which an operator should never have to decode
LEAKS = ("must be >=", "was signed by", "Downloaded ", "Expected ", "Traceback")


@dataclass
class World:
    repo: Repository
    mirror: Mirror
    url: str
    tmp: Path

    def install(self) -> Installation:
        """`commonshelf init` from 1.root.json, running the newest version of the app."""
        root = self.repo.read("1.root.json")
        return Installation.init(self.tmp / "home", self.url, root, runs=self.repo.releases)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    repo = Repository.create(tmp_path)
    mirror = Mirror(repo.public)
    with mirror.serving() as url:
        yield World(repo, mirror, url, tmp_path)


def refused(
    installation: Installation,
    says: str,
    *,
    genuine: Mapping[str, bytes] | None = None,
    command: tuple[str, ...] = ("apps",),
    poll: bool = True,
    cli: bool = True,
) -> str:
    """Poll in process and as the real command; both refuse with one line containing `says`
    and a fix; the trusted state is unchanged but for `genuine` (HOME-relative path ->
    the publisher's bytes that python-tuf may store). Returns the last line said."""
    before = installation.trusted()
    lines: list[str] = []
    if poll:
        with pytest.raises(TrustError) as caught:
            installation.poll()
        lines.append(str(caught.value))
        assert says in lines[-1] and " Fix: " in lines[-1] and "\n" not in lines[-1], lines
        assert caught.value.fix, lines
    if cli:
        result = installation.cli(*command)
        assert result.returncode == 2, (result.stdout, result.stderr)
        said = result.stderr.strip().splitlines()
        assert len(said) == 1, result.stderr
        lines.append(said[0])
        assert said[0].startswith("error: ") and says in said[0] and " Fix: " in said[0], said
    assert not any(leak in line for leak in LEAKS for line in lines), lines
    after = installation.trusted()
    stored = genuine or {}
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    assert changed <= stored.keys(), f"the attack changed {sorted(changed - stored.keys())}"
    for name in changed:
        assert after[name] == stored[name], f"{name} holds bytes the publisher never signed"
    return lines[-1]


def metadata(name: str) -> str:
    return f"tuf/metadata/{name}"


# ---- 1. a tampered target


def test_a_tampered_target_is_refused(world: World, tmp_path: Path) -> None:
    installation = world.install()
    # an SBOM the installation never downloaded: same length, other bytes
    stored = world.repo.target_file(sbom_path(1))
    stored.write_bytes(sbom(1).replace(b"CycloneDX", b"CycloneDY"))
    out = tmp_path / "web.cdx.json"
    refused(
        installation,
        f"{sbom_path(1)} from {world.url} does not match its signed hash",
        command=("sbom", "web", "--out", str(out)),
        poll=False,
    )
    assert not out.exists()
    # the catalogue of a new release, changed on the mirror after signing: the new signed
    # metadata is genuine and kept; the catalogue held (what the agent acts on) is not replaced
    world.repo.release()
    genuine = {
        metadata("timestamp.json"): world.repo.read("timestamp.json"),
        metadata("snapshot.json"): world.repo.read("2.snapshot.json"),
        metadata("targets.json"): world.repo.read("2.targets.json"),
    }
    catalogue = world.repo.target_file(CATALOG)
    catalogue.write_bytes(catalogue.read_bytes().replace(b"A web app", b"A bad app"))
    refused(
        installation,
        f"catalog.json from {world.url} does not match its signed hash",
        genuine=genuine,
    )


# ---- 2. rollbacks


def _replay_timestamp(world: World) -> dict[str, bytes]:
    world.repo.path("timestamp.json").write_bytes((world.tmp / "1.timestamp.json").read_bytes())
    return {}


def _replay_snapshot(world: World) -> dict[str, bytes]:
    """The next release's timestamp (genuine) with the first release's snapshot served as
    its snapshot."""
    world.repo.release()
    genuine = {metadata("timestamp.json"): world.repo.read("timestamp.json")}
    world.repo.path("3.snapshot.json").write_bytes(world.repo.read("1.snapshot.json"))
    return genuine


def _timestamp_names_old_snapshot(world: World) -> dict[str, bytes]:
    """With the timestamp key stolen: a newer timestamp naming the first snapshot."""

    def back(signed: Any) -> None:
        signed.version += 1
        signed.snapshot_meta = MetaFile(version=1)

    world.repo.resign("timestamp.json", back, [world.repo.signer("timestamp")])
    return {}


ROLLBACK = "older than what this installation already trusts (a rollback attack"
ROLLBACKS: dict[str, tuple[Callable[[World], dict[str, bytes]], str, str]] = {
    "timestamp replayed": (_replay_timestamp, "(timestamp.json)", ROLLBACK),
    # (the timestamp names the snapshot's hash: the old file fails it before its version)
    "snapshot replayed": (_replay_snapshot, "(3.snapshot.json)", "does not match its signed"),
    "timestamp naming an older snapshot": (
        _timestamp_names_old_snapshot,
        "(timestamp.json)",
        ROLLBACK,
    ),
}


@pytest.mark.parametrize("attack", list(ROLLBACKS))
def test_a_rollback_is_refused(world: World, attack: str) -> None:
    """The installation has seen release 2; the mirror goes back to release 1's metadata."""
    (world.tmp / "1.timestamp.json").write_bytes(world.repo.read("timestamp.json"))
    installation = world.install()
    world.repo.release()
    second = world.repo.target_file(CATALOG).read_bytes()
    assert installation.poll() == second  # it trusts release 2 now
    rewrite, names, says = ROLLBACKS[attack]
    genuine = rewrite(world)
    line = refused(installation, says, genuine=genuine)
    assert names in line


# ---- 3. an expired timestamp


def test_an_expired_timestamp_is_refused(world: World) -> None:
    installation = world.install()
    yesterday = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)

    def expired(signed: Any) -> None:
        signed.version += 1
        signed.expires = yesterday

    world.repo.resign("timestamp.json", expired, [world.repo.signer("timestamp")])
    line = refused(installation, "is covered by signed metadata that has expired (timestamp.json")
    assert f"it expired at {yesterday:%Y-%m-%dT%H:%M:%SZ}" in line
    assert "this machine's clock says" in line and "Fix: the publisher must run" in line


# ---- 4. mix-and-match


def _fork(world: World) -> Repository:
    """Another release 2 of the same chain, signed by the same keys (a copy of public/
    released from elsewhere): its 2.targets.json is genuine, but never published here."""
    fork = Repository(world.tmp / "fork" / "public", world.repo.keys, world.repo.releases)
    shutil.copytree(world.repo.public, fork.public)
    fork.releases += 5  # other content: a catalogue with more versions
    fork.release()
    return fork


def _hash_snapshots(repo: Repository) -> None:
    """What the publisher could write: the snapshot names targets by length and hash, and
    the timestamp names the snapshot likewise (re-signed with the repository's keys)."""
    snapshot = Metadata[Timestamp].from_bytes(repo.read("timestamp.json")).signed.snapshot_meta
    snapshot_name = f"{snapshot.version}.snapshot.json"
    signed = Metadata[Snapshot].from_bytes(repo.read(snapshot_name)).signed
    targets = signed.meta["targets.json"].version

    def name_targets(signed: Snapshot) -> None:
        data = repo.read(f"{targets}.targets.json")
        signed.meta["targets.json"] = MetaFile.from_data(targets, data, ["sha256"])

    def name_snapshot(signed: Timestamp) -> None:
        data = repo.read(snapshot_name)
        signed.snapshot_meta = MetaFile.from_data(snapshot.version, data, ["sha256"])

    repo.resign(snapshot_name, name_targets, [repo.signer("snapshot")])
    repo.resign("timestamp.json", name_snapshot, [repo.signer("timestamp")])


@pytest.mark.parametrize(
    "attack",
    [
        "another version's targets",
        "a fork's targets of the same version",
        "a fork's targets of the same version, hashed",
    ],
)
def test_targets_from_another_snapshot_are_refused(world: World, attack: str) -> None:
    """The installation holds release 1; the mirror serves release 2's timestamp and
    snapshot (genuine: stored) with a 2.targets.json that release 2 never had."""
    installation = world.install()
    fork = _fork(world) if "fork" in attack else None
    world.repo.release()
    if attack.endswith("hashed"):
        _hash_snapshots(world.repo)
    genuine = {
        metadata("timestamp.json"): world.repo.read("timestamp.json"),
        metadata("snapshot.json"): world.repo.read("2.snapshot.json"),
    }
    other = fork.read("2.targets.json") if fork else world.repo.read("1.targets.json")
    assert other != world.repo.read("2.targets.json")
    world.repo.path("2.targets.json").write_bytes(other)
    if fork is not None:  # its targets too, so only the metadata can give it away
        shutil.copytree(fork.public / "targets", world.repo.public / "targets", dirs_exist_ok=True)
    says = {
        # (the snapshot names length and hash: the other file fails those before its version)
        "another version's targets": "(2.targets.json) from",
        "a fork's targets of the same version": "(2.targets.json) from",
        "a fork's targets of the same version, hashed": f"(2.targets.json) from {world.url}",
    }[attack]
    line = refused(installation, says, genuine=genuine)
    if attack.endswith("hashed"):  # the signed length or, at the same length, the hash
        assert "sent a file larger than allowed" in line or "does not match its signed" in line


# ---- 5 and 6. roots


def _next_root(
    repo: Repository, version: int, change: Callable[[Root], None]
) -> Callable[..., bytes]:
    """A writer of N.root.json: root `version - 1` changed by `change`, signed by the
    signers it is given."""

    def write(*signers: CryptoSigner) -> bytes:
        def changed(signed: Any) -> None:
            signed.version = version
            change(signed)

        return repo.resign(
            f"{version - 1}.root.json", changed, list(signers), to=f"{version}.root.json"
        )

    return write


@pytest.mark.parametrize("attack", ["one of two keys", "threshold lowered to one key"])
def test_a_root_below_its_threshold_is_refused(world: World, attack: str) -> None:
    """The repository's root needs 2 of its 2 root keys; a new root signed by one is
    refused, whatever it says about its own threshold; signed by both it is followed."""
    repo, first, second = world.repo, world.repo.signer("root"), CryptoSigner.generate_ed25519()

    def two_of_two(signed: Any) -> None:
        signed.add_key(second.public_key, Root.type)
        signed.roles[Root.type].threshold = 2

    repo.resign("1.root.json", two_of_two, [first, second])
    installation = world.install()

    def lowered(signed: Root) -> None:
        if attack == "threshold lowered to one key":
            signed.revoke_key(second.public_key.keyid, Root.type)
            signed.roles[Root.type].threshold = 1

    write = _next_root(repo, 2, lowered)
    write(first)
    line = refused(installation, "is a new root not signed by trusted keys (1 of the 2 root keys")
    assert "(2.root.json)" in line and "re-run init only with a root obtained out of band" in line
    assert not (installation.home / "tuf" / "metadata" / "root_history" / "2.root.json").exists()
    accepted = write(first, second)  # the same root, signed to the threshold: followed
    installation.poll()
    assert (
        installation.home / "tuf" / "metadata" / "root_history" / "2.root.json"
    ).read_bytes() == accepted


def test_a_root_signed_by_a_revoked_key_is_refused(world: World) -> None:
    """Root key A is rotated out for B (2.root.json signed by both) and the installation
    follows; 3.root.json signed by A alone, putting A back, is refused."""
    repo, old, new = world.repo, world.repo.signer("root"), CryptoSigner.generate_ed25519()
    installation = world.install()

    def rotate(signed: Root) -> None:
        signed.revoke_key(old.public_key.keyid, Root.type)
        signed.add_key(new.public_key, Root.type)

    _next_root(repo, 2, rotate)(old, new)
    installation.poll()
    held = installation.home / "tuf" / "metadata"
    assert (held / "root.json").resolve() == (held / "root_history" / "2.root.json").resolve()

    def restore(signed: Root) -> None:
        signed.revoke_key(new.public_key.keyid, Root.type)
        signed.add_key(old.public_key, Root.type)

    _next_root(repo, 3, restore)(old)
    line = refused(installation, "is a new root not signed by trusted keys (0 of the 1 root keys")
    assert "(3.root.json)" in line


# ---- 7. oversized metadata


@pytest.mark.parametrize(("name", "limit"), [("2.root.json", 512_000), ("timestamp.json", 16_384)])
def test_oversized_metadata_is_refused(world: World, name: str, limit: int) -> None:
    """Genuine metadata padded with whitespace (still valid JSON, signatures intact) far
    past the client's cap for its role."""
    installation = world.install()
    source = "1.root.json" if name == "2.root.json" else name
    world.repo.path(name).write_bytes(world.repo.read(source) + b" " * (limit + 100_000))
    line = refused(installation, f"sent a file larger than allowed (over {limit} bytes")
    assert f"({name})" in line


# ---- 8. an endless data stream


@pytest.mark.parametrize(
    ("stream", "file"),
    [("flood", "metadata"), ("flood", "target"), ("drip", "metadata"), ("drip", "target")],
)
def test_an_endless_stream_is_cut(
    world: World, stream: str, file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that never ends: `flood` is cut at the client's length limit at once, `drip`
    (a byte every 50 ms, so no read ever times out) when the file has taken its budget of
    FILE_TIMEOUTS timeouts. A drip is polled once (the command for metadata, in process for
    a target) to keep this fast."""
    installation = world.install()
    monkeypatch.setenv("COMMONSHELF_FETCH_TIMEOUT", "1")  # in process and in the command
    genuine: dict[str, bytes] = {}
    if file == "target":  # a new release whose catalogue never ends
        world.repo.release()
        path = world.repo.target_file(CATALOG)
        served = f"/targets/{path.relative_to(world.repo.public / 'targets')}"
        genuine = {
            metadata("timestamp.json"): world.repo.read("timestamp.json"),
            metadata("snapshot.json"): world.repo.read("2.snapshot.json"),
            metadata("targets.json"): world.repo.read("2.targets.json"),
        }
        where = f"catalog.json from {world.url}"
    else:
        served = "/metadata/timestamp.json"
        where = f"(timestamp.json) from {world.url}"
    world.mirror.endless[served] = "flood" if stream == "flood" else "drip"
    says = (
        "sent a file larger than allowed (over"
        if stream == "flood"
        else f"could not be fetched: the server was still sending it after {FILE_TIMEOUTS} s"
    )
    started = time.monotonic()
    line = refused(
        installation,
        f"{where} {says}",
        genuine=genuine,
        poll=stream == "flood" or file == "target",
        cli=stream == "flood" or file == "metadata",
    )
    took = time.monotonic() - started
    assert "endless" in line
    assert world.mirror.wait_hung_up(served, 5), "the client kept reading"
    # a drip costs the file's budget (a 1 s timeout here) plus at most one read timeout;
    # the rest of the bound is the command's start-up
    budget = 0 if stream == "flood" else FILE_TIMEOUTS + 1
    assert took < budget + 10, f"stopped after {took:.1f} s"
