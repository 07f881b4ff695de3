"""Making and changing the root of trust: `invoke keys.init` and `invoke keys.rotate ROLE`.

`init_keys` makes a threshold of root keys (default 2 of 3) in the offline folder, one key
for each online role, and `1.root.json`, the file installations pin. `rotate` replaces a
role's keys with new ones in a new root version: for targets, snapshot or timestamp the
new root is signed by a threshold of the root keys; for root itself, by a threshold of the
old keys AND a threshold of the new ones (TUF 5.3.4), so an installation that trusts only
the old root can walk to the new one. The new root goes out through the Publisher, with
whatever it no longer accepts re-signed and `timestamp.json` last, in one all-or-nothing
publish.

Keys are written before the root that names them is published: a crash in between leaves
the old root in force and an unused new key on disk (or, for an online role, a
`R.pem.next`), never a published key nobody holds. Revoked root key files are deleted
after the publish: a revoked root key can still sign for installations that have not yet
seen the new root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root

from commonshelf.catalogue.expiry import Expiry
from commonshelf.catalogue.keys import (
    ONLINE,
    ROLES,
    HeldKey,
    SigningKeys,
    keys_folder,
    load_keys,
    offline_folder,
    refuse_unsafe_folder,
    write_key,
)
from commonshelf.catalogue.signing import (
    SERIALIZER,
    Clock,
    Publisher,
    PublishResult,
    _now,
    latest_root,
)
from commonshelf.platform.errors import ReleaseError, TrustError
from commonshelf.platform.fsutil import write_bytes_atomic

MAX_ROOT_KEYS = 16


@dataclass(frozen=True)
class KeysMade:
    root: Path  # 1.root.json, in public/metadata/
    threshold: int
    root_keys: tuple[Path, ...]  # in the offline folder
    online_keys: Mapping[str, Path]


@dataclass(frozen=True)
class Rotation:
    role: str
    root_version: int  # the root that now names the new keys
    threshold: int  # the role's threshold in it
    new_keys: tuple[Path, ...]  # files now holding the role's keys
    removed: tuple[Path, ...]  # revoked root key files deleted
    # revoked keys that environment variables still give (their secrets are the operator's)
    revoked_elsewhere: tuple[str, ...]
    published: PublishResult


def _root_filename(signer: CryptoSigner) -> str:
    return f"root-{signer.public_key.keyid[:16]}.pem"


def _check_shape(count: int, threshold: int) -> None:
    if not 1 <= threshold <= count <= MAX_ROOT_KEYS:
        raise ReleaseError(
            f"A root of {count} key(s) with threshold {threshold} is not possible.",
            f"choose 1 <= threshold <= keys <= {MAX_ROOT_KEYS} (the default is 2 of 3).",
        )


def init_keys(
    public_dir: Path,
    keys_dir: Path,
    *,
    offline: Path | None = None,
    count: int = 3,
    threshold: int = 2,
    env: Mapping[str, str] | None = None,
    expiry: Expiry | None = None,
    clock: Clock | None = None,
) -> KeysMade:
    """Make the keys of a new repository and its `1.root.json` (see the module docstring)."""
    env = os.environ if env is None else env
    _check_shape(count, threshold)
    metadata = public_dir / "metadata"
    existing = latest_root(metadata)
    if existing is not None:
        raise ReleaseError(
            f"{public_dir} already holds a repository (root v{existing.signed.version}); its "
            "installations trust that root.",
            "change its keys with `invoke keys.rotate ROLE` (root, targets, snapshot or "
            "timestamp); `keys.rotate root --root-keys 3 --threshold 2` moves a development root "
            "to offline keys.",
        )
    held = load_keys(keys_dir, env, offline=offline)
    found = [key.where for key in (*held.online.values(), *held.root)]
    if found:
        raise ReleaseError(
            f"Signing keys exist already: {', '.join(found)}.",
            "keep them and rotate (`invoke keys.rotate ROLE`), or move them away first.",
        )
    folder, root_folder = keys_folder(keys_dir, env), offline_folder(keys_dir, env, offline)
    for place in (folder, root_folder):
        refuse_unsafe_folder(place, public_dir)
    now = (clock or _now)()
    root_signers = [CryptoSigner.generate_ed25519() for _ in range(count)]
    online = {role: CryptoSigner.generate_ed25519() for role in ONLINE}
    root = Root(
        expires=now + (expiry or Expiry.from_env()).lifetime(Root.type), consistent_snapshot=True
    )
    for signer in root_signers:
        root.add_key(signer.public_key, Root.type)
    root.roles[Root.type].threshold = threshold
    for role, signer in online.items():
        root.add_key(signer.public_key, role)
    md = Metadata(root)
    for signer in root_signers:
        md.sign(signer, append=True)
    root_files = tuple(root_folder / _root_filename(signer) for signer in root_signers)
    online_files = {role: folder / f"{role}.pem" for role in ONLINE}
    for path, signer in [
        *zip(root_files, root_signers, strict=True),
        *((online_files[r], online[r]) for r in ONLINE),
    ]:
        write_key(path, signer)
    write_bytes_atomic(metadata / "1.root.json", md.to_bytes(SERIALIZER))
    return KeysMade(metadata / "1.root.json", threshold, root_files, online_files)


def rotate(
    public_dir: Path,
    keys_dir: Path,
    role: str,
    *,
    offline: Path | None = None,
    count: int = 0,
    threshold: int = 0,
    env: Mapping[str, str] | None = None,
    expiry: Expiry | None = None,
    clock: Clock | None = None,
) -> Rotation:
    """Replace `role`'s keys and publish the new root (see the module docstring). For root,
    `count` and `threshold` (0: as now) reshape it."""
    env = os.environ if env is None else env
    if role not in ROLES:
        raise ReleaseError(f"There is no role {role!r}.", f"name one of {', '.join(ROLES)}.")
    current = latest_root(public_dir / "metadata")
    if current is None:
        raise ReleaseError(
            f"{public_dir} holds no repository, so there is no key to rotate.",
            "start one with `invoke keys.init` (or a release, with development keys).",
        )
    keys = load_keys(keys_dir, env, offline=offline)
    old_root_keys = keys.trusted_root_keys(current.signed)
    needed = current.signed.roles[Root.type].threshold
    if len(old_root_keys) < needed:
        raise TrustError(
            f"Rotating a key changes the root, which needs {needed} of the keys of root "
            f"v{current.signed.version}; {len(old_root_keys)} found.",
            "make the offline root keys available (keys/offline/, a folder named by "
            "COMMONSHELF_OFFLINE_KEYS_DIR or --offline, or COMMONSHELF_KEY_ROOT_<N>_PEM).",
        )
    now = (clock or _now)()
    lifetimes = expiry or Expiry.from_env()
    new = Metadata[Root].from_bytes(current.to_bytes(SERIALIZER))  # a copy to change
    new.signed.version += 1
    new.signed.expires = now + lifetimes.lifetime(Root.type)
    old_keyids = list(new.signed.roles[role].keyids)
    for keyid in old_keyids:
        new.signed.revoke_key(keyid, role)
    folder = keys_folder(keys_dir, env)
    held = keys.online.get(role)  # the online key replaced (None for root)
    if role == Root.type:
        shape = (count or len(old_keyids), threshold or needed)
        _check_shape(*shape)
        fresh = [CryptoSigner.generate_ed25519() for _ in range(shape[0])]
        root_folder = offline_folder(keys_dir, env, offline)
        refuse_unsafe_folder(root_folder, public_dir)
        files = [root_folder / _root_filename(signer) for signer in fresh]
        new_keys = [HeldKey(s, str(p), p) for s, p in zip(fresh, files, strict=True)]
        publishing = SigningKeys(keys.online, tuple(new_keys))
        staged = list(zip(files, fresh, strict=True))
        new.signed.roles[Root.type].threshold = shape[1]
    else:
        signer = CryptoSigner.generate_ed25519()
        path = held.path if held is not None and held.path is not None else folder / f"{role}.pem"
        refuse_unsafe_folder(path.parent, public_dir)
        fresh, files = [signer], [path]
        publishing = keys.with_online(role, HeldKey(signer, str(path), path))
        staged = [(path.with_name(path.name + ".next"), signer)]
    for signer in fresh:
        new.signed.add_key(signer.public_key, role)
    new.signatures.clear()
    for signer in [key.signer for key in old_root_keys] + (fresh if role == Root.type else []):
        new.sign(signer, append=True)
    for path, signer in staged:
        write_key(path, signer)
    try:
        result = Publisher(public_dir, publishing, expiry=lifetimes, clock=clock).publish(
            {}, rotated_root=new
        )
    except BaseException:
        for path, _ in staged:
            path.unlink(missing_ok=True)
        raise
    if role != Root.type:
        os.replace(staged[0][0], files[0])
    if role == Root.type:
        removed, elsewhere = _forget_revoked(keys, new.signed)
    else:
        # a key file is replaced in place; a PEM in an environment variable is the operator's
        removed, elsewhere = (), (held.where,) if held is not None and held.path is None else ()
    return Rotation(
        role,
        new.signed.version,
        new.signed.roles[role].threshold,
        tuple(files),
        removed,
        elsewhere,
        result,
    )


def _forget_revoked(keys: SigningKeys, root: Root) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """Delete the revoked root key files this process found by itself (the offline folder,
    keys/root.pem); name the ones an environment variable gives, for the operator."""
    removed: list[Path] = []
    elsewhere: list[str] = []
    for key in keys.root:
        if key.keyid in root.roles[Root.type].keyids:
            continue
        if key.path is None or key.from_env:
            elsewhere.append(key.where)
            continue
        key.path.unlink(missing_ok=True)
        removed.append(key.path)
    return tuple(removed), tuple(elsewhere)
