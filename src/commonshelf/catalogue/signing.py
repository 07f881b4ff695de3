"""The signed catalogue, publisher side: a static TUF repository in `public/`.

python-tuf's Metadata API with one ed25519 key per top-level role and
consistent snapshots: targets are stored under their sha256
(`targets/apps/x/<sha256>.compose.yml`), metadata is versioned
(`N.targets.json`, `N.snapshot.json`) and only `timestamp.json` is replaced in
place, written last. A reader therefore always sees one consistent repository,
and a publish that fails midway removes what it wrote and leaves `public/` as
it was.

Every file is written atomically (temporary file, fsync, rename), so a publish killed
outright (SIGKILL, power loss) leaves at worst files that no reader reaches: targets under
new hashes, metadata versions newer than what `timestamp.json` names, temporary files.
Installations keep seeing the previous release; the next publish removes that debris
(`_drop_unpublished`) and writes those versions again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from commonshelf.platform.errors import ReleaseError, TrustError
from commonshelf.platform.fsutil import write_bytes_atomic

ROLES = (Root.type, Targets.type, Snapshot.type, Timestamp.type)
SERIALIZER = JSONSerializer(compact=False)


@dataclass(frozen=True)
class Expiry:
    """Lifetimes in days. Installations refuse expired metadata, so the release job re-signs
    any role with less than half its lifetime left each time it runs."""

    root: int = 365
    targets: int = 90
    snapshot: int = 30
    timestamp: int = 7

    def days(self, role: str) -> int:
        return int(getattr(self, role))


@dataclass(frozen=True)
class SigningKeys:
    signers: dict[str, CryptoSigner]
    paths: dict[str, Path]

    def keyid(self, role: str) -> str:
        return str(self.signers[role].public_key.keyid)


def key_paths(keys_dir: Path, env: Mapping[str, str]) -> dict[str, Path]:
    """Where each role's private key lives: COMMONSHELF_KEY_<ROLE>, else <keys dir>/<role>.pem."""
    folder = Path(env.get("COMMONSHELF_KEYS_DIR") or keys_dir)
    return {
        role: Path(env.get(f"COMMONSHELF_KEY_{role.upper()}") or folder / f"{role}.pem")
        for role in ROLES
    }


def load_or_create_keys(
    keys_dir: Path, env: Mapping[str, str] | None = None
) -> tuple[SigningKeys, list[str]]:
    """Load the four role keys; generate development keys for missing default-path ones.

    Returns the keys and the roles whose keys were generated now (the caller warns). A key
    named by an environment variable is never generated: a missing one is an error.
    """
    env = os.environ if env is None else env
    paths = key_paths(keys_dir, env)
    signers: dict[str, CryptoSigner] = {}
    created: list[str] = []
    for role, path in paths.items():
        if path.exists():
            try:
                private = load_pem_private_key(path.read_bytes(), None)
                signers[role] = CryptoSigner(private)
            except (OSError, ValueError, TypeError) as exc:
                raise ReleaseError(
                    f"The {role} key {path} cannot be loaded ({exc}).",
                    "restore the PEM (PKCS#8, unencrypted) key file.",
                ) from None
            continue
        if env.get(f"COMMONSHELF_KEY_{role.upper()}"):
            raise ReleaseError(
                f"COMMONSHELF_KEY_{role.upper()} names {path}, which does not exist.",
                "point it at the role's private key file.",
            )
        signer = CryptoSigner.generate_ed25519()
        write_bytes_atomic(path, signer.private_bytes, mode=0o600)
        signers[role] = signer
        created.append(role)
    return SigningKeys(signers, paths), created


@dataclass(frozen=True)
class PublishResult:
    root_version: int
    targets_version: int
    snapshot_version: int
    timestamp_version: int
    changed: bool  # target content changed (a new targets version)
    written: tuple[str, ...]  # files created or replaced, relative to public/


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _near_expiry(expires: datetime, days: int, now: datetime) -> bool:
    return expires - now < timedelta(days=days) / 2


class Publisher:
    """Writes the TUF repository for the catalogue into `public_dir`."""

    def __init__(self, public_dir: Path, keys: SigningKeys, *, expiry: Expiry | None = None):
        self.public = public_dir
        self.metadata_dir = public_dir / "metadata"
        self.targets_dir = public_dir / "targets"
        self.keys = keys
        self.expiry = expiry or Expiry()

    # ---- reading the published state

    def _latest_root(self) -> Metadata[Root] | None:
        versions = [
            int(m.group(1))
            for p in self.metadata_dir.glob("*.root.json")
            if (m := re.fullmatch(r"(\d+)\.root\.json", p.name))
        ]
        if not versions:
            return None
        return Metadata[Root].from_file(str(self.metadata_dir / f"{max(versions)}.root.json"))

    def _versions(self, role: str) -> list[int]:
        return [
            int(m.group(1))
            for p in self.metadata_dir.glob(f"*.{role}.json")
            if (m := re.fullmatch(rf"(\d+)\.{role}\.json", p.name))
        ]

    def _drop_unpublished(self, targets_version: int, snapshot_version: int) -> None:
        """Remove what a killed publish left that no reader can reach: targets and snapshot
        metadata newer than the published timestamp names, and temporary files. (Roots are
        probed by version, so a root written is published: it is kept, and used.)"""
        for role, published in ((Targets.type, targets_version), (Snapshot.type, snapshot_version)):
            for version in self._versions(role):
                if version > published:
                    (self.metadata_dir / f"{version}.{role}.json").unlink()
        for folder in (self.metadata_dir, self.targets_dir):
            for leftover in folder.rglob(".*.tmp") if folder.is_dir() else ():
                leftover.unlink()

    def _load(
        self,
    ) -> tuple[Metadata[Root], Metadata[Targets], Metadata[Snapshot], Metadata[Timestamp]] | None:
        root = self._latest_root()
        never_published = not (self.metadata_dir / "timestamp.json").exists() and all(
            v == 1 for role in ROLES[:3] for v in self._versions(role)
        )
        if root is None or never_published:  # a first publish killed before its timestamp
            self._drop_unpublished(0, 0)
            (self.metadata_dir / "1.root.json").unlink(missing_ok=True)
            return None
        try:
            timestamp = Metadata[Timestamp].from_file(str(self.metadata_dir / "timestamp.json"))
            snap_version = timestamp.signed.snapshot_meta.version
            snapshot = Metadata[Snapshot].from_file(
                str(self.metadata_dir / f"{snap_version}.snapshot.json")
            )
            targets_version = snapshot.signed.meta["targets.json"].version
            targets = Metadata[Targets].from_file(
                str(self.metadata_dir / f"{targets_version}.targets.json")
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ReleaseError(
                f"The repository in {self.public} is incomplete ({exc}).",
                "restore public/ from the publishing host.",
            ) from None
        for role in ROLES:
            if self.keys.keyid(role) not in root.signed.roles[role].keyids:
                raise TrustError(
                    f"The {role} key {self.keys.paths[role]} is not one that {self.public} "
                    f"trusts for {role}.",
                    "use the keys this repository was created with (COMMONSHELF_KEY_* or "
                    "keys/), or rotate the root.",
                )
        self._drop_unpublished(targets.signed.version, snapshot.signed.version)
        return root, targets, snapshot, timestamp

    def _new(
        self, now: datetime
    ) -> tuple[Metadata[Root], Metadata[Targets], Metadata[Snapshot], Metadata[Timestamp]]:
        root = Root(expires=now, consistent_snapshot=True)
        for role in ROLES:
            root.add_key(self.keys.signers[role].public_key, role)
        fresh = (
            Metadata(root),
            Metadata(Targets(expires=now)),
            Metadata(Snapshot(expires=now)),
            Metadata(Timestamp(expires=now)),
        )
        for md in fresh:
            md.signed.version = 0  # the first publish bumps every role to version 1
        return fresh

    # ---- writing

    def _target_file(self, info: TargetFile) -> Path:
        folder, _, name = info.path.rpartition("/")
        return self.targets_dir / folder / f"{info.hashes['sha256']}.{name}"

    def publish(self, targets: Mapping[str, bytes]) -> PublishResult:
        """Add or replace `targets` (path -> bytes), keep the rest, re-sign what needs it."""
        now = _now()
        loaded = self._load()
        root, tmd, snap, ts = loaded if loaded is not None else self._new(now)
        created: list[Path] = []

        def write_new(path: Path, data: bytes) -> None:
            if path.exists():
                if path.read_bytes() == data:
                    return
                raise ReleaseError(
                    f"{path} exists with other content.",
                    "never edit a published file; restore it or republish.",
                )
            write_bytes_atomic(path, data)
            created.append(path)

        def bump(md: Metadata, role: str) -> bytes:  # type: ignore[type-arg]
            md.signed.version += 1
            md.signed.expires = now + timedelta(days=self.expiry.days(role))
            md.sign(self.keys.signers[role])
            return md.to_bytes(SERIALIZER)

        try:
            changed = False
            for target_path, data in sorted(targets.items()):
                info = TargetFile.from_data(target_path, data, ["sha256"])
                if tmd.signed.targets.get(target_path) == info:
                    continue
                write_new(self._target_file(info), data)
                tmd.signed.targets[target_path] = info
                changed = True
            wrote_root = loaded is None or _near_expiry(root.signed.expires, self.expiry.root, now)
            if wrote_root:
                write_new(
                    self.metadata_dir / f"{root.signed.version + 1}.root.json",
                    bump(root, Root.type),
                )
            new_targets = (
                changed
                or loaded is None
                or _near_expiry(tmd.signed.expires, self.expiry.targets, now)
            )
            if new_targets:
                data = bump(tmd, Targets.type)
                write_new(self.metadata_dir / f"{tmd.signed.version}.targets.json", data)
                snap.signed.meta["targets.json"] = MetaFile(version=tmd.signed.version)
            new_snapshot = new_targets or _near_expiry(
                snap.signed.expires, self.expiry.snapshot, now
            )
            if new_snapshot:
                data = bump(snap, Snapshot.type)
                write_new(self.metadata_dir / f"{snap.signed.version}.snapshot.json", data)
                ts.signed.snapshot_meta = MetaFile(version=snap.signed.version)
            new_timestamp = (
                new_snapshot
                or wrote_root
                or _near_expiry(ts.signed.expires, self.expiry.timestamp, now)
            )
            if new_timestamp:  # last: this replace is what makes the new state visible
                write_bytes_atomic(self.metadata_dir / "timestamp.json", bump(ts, Timestamp.type))
        except BaseException:
            for path in created:
                path.unlink(missing_ok=True)
            raise
        written = [str(path.relative_to(self.public)) for path in created]
        if new_timestamp:
            written.append("metadata/timestamp.json")
        return PublishResult(
            root.signed.version,
            tmd.signed.version,
            snap.signed.version,
            ts.signed.version,
            changed,
            tuple(written),
        )
