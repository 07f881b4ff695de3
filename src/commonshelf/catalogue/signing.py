"""The signed catalogue, publisher side: a static TUF repository in `public/`.

python-tuf's Metadata API, ed25519 keys (`keys.py`: a threshold of offline root keys, one
online key for each other role) and consistent snapshots: targets are stored under their
sha256 (`targets/apps/x/<sha256>.compose.yml`), metadata is versioned (`N.root.json`,
`N.targets.json`, `N.snapshot.json`) and only `timestamp.json` is replaced in place,
written last. A reader therefore always sees one consistent repository, and a publish that
fails midway removes what it wrote and leaves `public/` as it was.

Each publish re-signs a role whose content changed, whose metadata the current root no
longer accepts (its key was rotated: `rotation.py`), or that has less than half its
lifetime left (`expiry.py`); `refresh`, for a scheduled job, changes no target and always
re-signs the timestamp. Root is re-signed only where a threshold of its keys is at hand; elsewhere
the result carries a note saying when it expires. The time comes from `clock`, so tests
move it rather than wait.

Every file is written atomically (temporary file, fsync, rename), so a publish killed
outright (SIGKILL, power loss) leaves at worst files that no reader reaches: targets under
new hashes, metadata versions newer than what `timestamp.json` names, temporary files.
Installations keep seeing the previous release; the next publish removes that debris
(`_drop_unpublished`) and writes those versions again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

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

from commonshelf.catalogue.expiry import Expiry
from commonshelf.catalogue.keys import (
    ONLINE,
    ROLES,
    ROTATE_FIX,
    HeldKey,
    SigningKeys,
    load_keys,
    load_or_create_keys,
)
from commonshelf.platform.errors import ReleaseError, TrustError
from commonshelf.platform.fsutil import write_bytes_atomic

__all__ = [  # the keys and lifetimes are re-exported: callers import them from here
    "ROLES",
    "SERIALIZER",
    "Expiry",
    "HeldKey",
    "PublishResult",
    "Publisher",
    "SigningKeys",
    "latest_root",
    "load_keys",
    "load_or_create_keys",
]

SERIALIZER = JSONSerializer(compact=False)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class PublishResult:
    root_version: int
    targets_version: int
    snapshot_version: int
    timestamp_version: int
    changed: bool  # target content changed (a new targets version)
    written: tuple[str, ...]  # files created or replaced, relative to public/
    notes: tuple[str, ...] = ()  # what the operator must act on soon (a root due, unsigned)
    expires: Mapping[str, datetime] = field(default_factory=dict)  # role -> as published


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _versions(metadata_dir: Path, role: str) -> list[int]:
    return [
        int(m.group(1))
        for p in metadata_dir.glob(f"*.{role}.json")
        if (m := re.fullmatch(rf"(\d+)\.{role}\.json", p.name))
    ]


def latest_root(metadata_dir: Path) -> Metadata[Root] | None:
    """The newest `N.root.json` in `metadata_dir` (roots are probed by version: written is
    published), or None."""
    versions = _versions(metadata_dir, Root.type)
    if not versions:
        return None
    return Metadata[Root].from_file(str(metadata_dir / f"{max(versions)}.root.json"))


@dataclass
class _State:
    """The repository a publish starts from."""

    root: Metadata[Root]
    targets: Metadata[Targets]
    snapshot: Metadata[Snapshot]
    timestamp: Metadata[Timestamp]
    published: bool  # a timestamp.json exists (else every role is signed for the first time)
    new_root: bool  # no root yet: this publish makes one (development keys)


class Publisher:
    """Writes the TUF repository for the catalogue into `public_dir`."""

    def __init__(
        self,
        public_dir: Path,
        keys: SigningKeys,
        *,
        expiry: Expiry | None = None,
        clock: Clock | None = None,
    ):
        self.public = public_dir
        self.metadata_dir = public_dir / "metadata"
        self.targets_dir = public_dir / "targets"
        self.keys = keys
        self.expiry = expiry or Expiry.from_env()
        self.clock = clock or _now

    # ---- reading the published state

    def _drop_unpublished(self, targets_version: int, snapshot_version: int) -> None:
        """Remove what a killed publish left that no reader can reach: targets and snapshot
        metadata newer than the published timestamp names, and temporary files. (Roots are
        probed by version, so a root written is published: it is kept, and used.)"""
        for role, published in ((Targets.type, targets_version), (Snapshot.type, snapshot_version)):
            for version in _versions(self.metadata_dir, role):
                if version > published:
                    (self.metadata_dir / f"{version}.{role}.json").unlink()
        for folder in (self.metadata_dir, self.targets_dir):
            for leftover in folder.rglob(".*.tmp") if folder.is_dir() else ():
                leftover.unlink()

    def _load(self, now: datetime) -> _State:
        root = latest_root(self.metadata_dir)
        if root is None:
            return self._new(now)
        if not (self.metadata_dir / "timestamp.json").exists():
            # a root from `invoke keys.init`, or a first publish killed before its timestamp
            return _State(root, *_unsigned(now), published=False, new_root=False)
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
        return _State(root, targets, snapshot, timestamp, published=True, new_root=False)

    def _new(self, now: datetime) -> _State:
        """A new repository signed with development keys: one root key, threshold 1. A root
        of several keys is made by `invoke keys.init`, never here."""
        if len(self.keys.root) != 1 or any(role not in self.keys.online for role in ONLINE):
            raise ReleaseError(
                f"{self.public} holds no repository, and a new one needs exactly one root key "
                f"and the online keys ({len(self.keys.root)} root key(s) and "
                f"{', '.join(self.keys.online) or 'no online keys'} found).",
                "restore public/ from the publishing host, or start a repository with "
                "`invoke keys.init`.",
            )
        root = Root(expires=now, consistent_snapshot=True)
        root.add_key(self.keys.root[0].signer.public_key, Root.type)
        for role in ONLINE:
            root.add_key(self.keys.online[role].signer.public_key, role)
        md = Metadata(root)
        md.signed.version = 0  # the first publish bumps every role to version 1
        return _State(md, *_unsigned(now), published=False, new_root=True)

    def _check_rotation(self, old: Metadata[Root], new: Metadata[Root]) -> None:
        """A new root must be the next version, signed by a threshold of the old root keys
        and of its own (TUF 5.3.4), as installations will check."""
        try:
            verified = new.signed.get_root_verification_result(
                old.signed, new.signed_bytes, new.signatures
            ).verified
        except ValueError as exc:  # not the next version
            raise TrustError(
                f"Root v{new.signed.version} cannot follow: {exc}", ROTATE_FIX
            ) from None
        if not verified:
            raise TrustError(
                f"Root v{new.signed.version} is not signed by a threshold of both the old and "
                "the new root keys; nothing was published.",
                "rotate with `invoke keys.rotate root` and enough of the old root keys at hand.",
            )

    def _root_due(self, root: Metadata[Root], now: datetime, notes: list[str]) -> bool:
        """Whether root is to be re-signed now: due, with a threshold of its keys at hand.
        Due without them is a note; expired without them, a refusal."""
        if not self.expiry.due(Root.type, root.signed.expires, now):
            return False
        threshold = root.signed.roles[Root.type].threshold
        if len(self.keys.trusted_root_keys(root.signed)) >= threshold:
            return True
        expires = root.signed.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        fix = (
            f"run `invoke refresh` where {threshold} of the offline root keys are at hand "
            "(keys/offline/, or COMMONSHELF_OFFLINE_KEYS_DIR)."
        )
        if root.signed.expires <= now:
            raise ReleaseError(f"Root v{root.signed.version} expired at {expires}.", fix)
        notes.append(f"root.json v{root.signed.version} expires at {expires}: {fix}")
        return False

    # ---- writing

    def _target_file(self, info: TargetFile) -> Path:
        folder, _, name = info.path.rpartition("/")
        return self.targets_dir / folder / f"{info.hashes['sha256']}.{name}"

    def refresh(self) -> PublishResult:
        """Re-sign the timestamp, and whatever else is due (or no longer accepted by the root),
        changing no target: the scheduled job that keeps installations updating. The timestamp
        is always re-signed: a schedule at least twice per timestamp lifetime then never lets
        it lapse (a release at 09:00 and a daily run at 10:00 would, under the half-life rule)."""
        if not (self.metadata_dir / "timestamp.json").exists():
            raise ReleaseError(
                f"{self.public} holds no published repository, so there is nothing to re-sign.",
                "publish one first (`invoke release`), or restore public/ from the publishing "
                "host.",
            )
        return self.publish({}, timestamp=True)

    def publish(
        self,
        targets: Mapping[str, bytes],
        *,
        rotated_root: Metadata[Root] | None = None,
        timestamp: bool = False,
    ) -> PublishResult:
        """Add or replace `targets` (path -> bytes), keep the rest, re-sign what needs it (and
        the timestamp with `timestamp`). `rotated_root` (from `rotation.rotate`) is published
        as the next root, before the metadata it now signs for."""
        now = self.clock()
        state = self._load(now)
        if rotated_root is not None:
            self._check_rotation(state.root, rotated_root)
        root = rotated_root or state.root
        self.keys.check_trusted(root.signed, self.public)
        if state.published:
            self._drop_unpublished(state.targets.signed.version, state.snapshot.signed.version)
        else:
            self._drop_unpublished(0, 0)
        tmd, snap, ts = state.targets, state.snapshot, state.timestamp
        created: list[Path] = []
        notes: list[str] = []

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
            md.signed.expires = now + self.expiry.lifetime(role)
            md.signatures.clear()
            for signer in self.keys.signers_for(role, root.signed):
                md.sign(signer, append=True)
            return md.to_bytes(SERIALIZER)

        def stale(md: Metadata, role: str) -> bool:  # type: ignore[type-arg]
            """Never signed, due, or signed by keys the root no longer lists for it."""
            return (
                not state.published
                or self.expiry.due(role, md.signed.expires, now)
                or not root.signed.get_verification_result(
                    role, md.signed_bytes, md.signatures
                ).verified
            )

        try:
            changed = False
            for target_path, data in sorted(targets.items()):
                info = TargetFile.from_data(target_path, data, ["sha256"])
                if tmd.signed.targets.get(target_path) == info:
                    continue
                write_new(self._target_file(info), data)
                tmd.signed.targets[target_path] = info
                changed = True
            wrote_root = rotated_root is not None
            if rotated_root is not None:
                path = self.metadata_dir / f"{rotated_root.signed.version}.root.json"
                write_new(path, rotated_root.to_bytes(SERIALIZER))
            elif state.new_root or self._root_due(root, now, notes):
                write_new(
                    self.metadata_dir / f"{root.signed.version + 1}.root.json",
                    bump(root, Root.type),
                )
                wrote_root = True
            new_targets = changed or stale(tmd, Targets.type)
            if new_targets:
                data = bump(tmd, Targets.type)
                write_new(self.metadata_dir / f"{tmd.signed.version}.targets.json", data)
                # length and hash too, not the version alone: a fork signed with the same
                # keys cannot pass its own N.targets.json off under this snapshot
                snap.signed.meta["targets.json"] = MetaFile.from_data(
                    tmd.signed.version, data, ["sha256"]
                )
            new_snapshot = new_targets or stale(snap, Snapshot.type)
            if new_snapshot:
                data = bump(snap, Snapshot.type)
                write_new(self.metadata_dir / f"{snap.signed.version}.snapshot.json", data)
                ts.signed.snapshot_meta = MetaFile.from_data(snap.signed.version, data, ["sha256"])
            # (a rotated root needs no new timestamp: installations probe for the next root)
            resigned_root = wrote_root and rotated_root is None
            new_timestamp = timestamp or new_snapshot or resigned_root or stale(ts, Timestamp.type)
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
            tuple(notes),
            {md.signed.type: md.signed.expires for md in (root, tmd, snap, ts)},
        )


def _unsigned(now: datetime) -> tuple[Metadata[Targets], Metadata[Snapshot], Metadata[Timestamp]]:
    """Targets, snapshot and timestamp before their first signature (version 0)."""
    fresh = (
        Metadata(Targets(expires=now)),
        Metadata(Snapshot(expires=now)),
        Metadata(Timestamp(expires=now)),
    )
    for md in fresh:
        md.signed.version = 0
    return fresh
