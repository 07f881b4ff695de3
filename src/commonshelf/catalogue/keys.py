"""The signing keys: where each role's private key comes from, and development keys.

Root is a threshold of keys kept offline (default 2 of 3): one `root-<keyid>.pem` each in a
folder the operator names (`keys/offline/` unless COMMONSHELF_OFFLINE_KEYS_DIR says
otherwise), needed only to change the root: `invoke keys.rotate`, and re-signing the root
once a year. Targets, snapshot and timestamp have one online key each, for the release job
and the scheduled `invoke refresh`. Where a key is looked for, first found wins:

- online role R: COMMONSHELF_KEY_R_PEM (the PEM itself: a CI secret), COMMONSHELF_KEY_R (a
  file), `<keys dir>/R.pem` (keys dir: COMMONSHELF_KEYS_DIR, default `keys/`);
- root: every key of COMMONSHELF_KEY_ROOT_PEM, COMMONSHELF_KEY_ROOT, COMMONSHELF_KEY_ROOT_<N>
  (a file) and COMMONSHELF_KEY_ROOT_<N>_PEM, the offline folder's `root-*.pem`, and
  `<keys dir>/root.pem` (a development key). The publisher signs with those the published
  root trusts.

With no key at all, `load_or_create_keys` makes development keys (root threshold 1, all in
`keys/`) so the local demo needs no setup; the caller says so. A key is never generated
for a role an environment variable names, and never written where git would track it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Root, Snapshot, Targets, Timestamp

from commonshelf.platform.errors import CommonshelfError, ReleaseError, TrustError
from commonshelf.platform.fsutil import write_bytes_atomic
from commonshelf.platform.proc import run

ROLES = (Root.type, Targets.type, Snapshot.type, Timestamp.type)
ONLINE = (Targets.type, Snapshot.type, Timestamp.type)
# in every PEM private key (PKCS#8, OpenSSH, PKCS#1); spelt in two parts so that no source
# file of the shelf holds the marker a secret scan looks for
PEM_MARKER = b"PRIVATE " + b"KEY-----"
ROTATE_FIX = (
    "use the keys this repository was created with (COMMONSHELF_KEY_*, keys/), or rotate "
    "the role's key with `invoke keys.rotate ROLE`."
)


@dataclass(frozen=True)
class HeldKey:
    """A private key this process holds, and where it came from (for messages only)."""

    signer: CryptoSigner
    where: str  # the file, or the environment variable that carried it
    path: Path | None = None  # the file it was read from (None: an environment variable)
    from_env: bool = False  # given by an environment variable (a PEM, or a file it names)

    @property
    def keyid(self) -> str:
        return str(self.signer.public_key.keyid)


@dataclass(frozen=True)
class SigningKeys:
    """The keys of one publisher: each online role's (when held) and every root key found."""

    online: Mapping[str, HeldKey]
    root: tuple[HeldKey, ...] = ()

    @property
    def signers(self) -> dict[str, CryptoSigner]:
        """role -> signer; root: the first root key (the only one, with development keys)."""
        found = {role: key.signer for role, key in self.online.items()}
        if self.root:
            found[Root.type] = self.root[0].signer
        return found

    @property
    def paths(self) -> dict[str, Path]:
        """role -> the file its key was read from (keys from environment variables: none)."""
        held = {**self.online, **({Root.type: self.root[0]} if self.root else {})}
        return {role: key.path for role, key in held.items() if key.path is not None}

    def keyid(self, role: str) -> str:
        return str(self.signers[role].public_key.keyid)

    def trusted_root_keys(self, root: Root) -> list[HeldKey]:
        """The root keys held that `root` lists for its own role."""
        return [key for key in self.root if key.keyid in root.roles[Root.type].keyids]

    def with_online(self, role: str, key: HeldKey) -> SigningKeys:
        return replace(self, online={**self.online, role: key})

    def check_trusted(self, root: Root, public: Path) -> None:
        """Every key held must be one `root` trusts (a stale CI secret is named at once)."""
        if self.root and not self.trusted_root_keys(root):
            where = self.root[0].where
            raise TrustError(
                f"The root key {where} is not one that {public} trusts for root.", ROTATE_FIX
            )
        for role, key in self.online.items():
            if key.keyid not in root.roles[role].keyids:
                raise TrustError(
                    f"The {role} key {key.where} is not one that {public} trusts for {role}.",
                    ROTATE_FIX,
                )

    def signers_for(self, role: str, root: Root) -> list[CryptoSigner]:
        """The keys to sign `role` with under `root`: its online key, or for root every root
        key held that it trusts (at least its threshold)."""
        if role == Root.type:
            held = self.trusted_root_keys(root)
            threshold = root.roles[Root.type].threshold
            if len(held) < threshold:
                raise TrustError(
                    f"Signing root v{root.version} needs {threshold} of its keys; "
                    f"{len(held)} found.",
                    "make the offline root keys available (COMMONSHELF_OFFLINE_KEYS_DIR, "
                    "or keys/offline/).",
                )
            return [key.signer for key in held]
        key = self.online.get(role)
        if key is None:
            name = f"COMMONSHELF_KEY_{role.upper()}"
            raise ReleaseError(
                f"No {role} key, and this publish must re-sign {role}.json.",
                f"give it as {name}_PEM (the PEM itself) or {name} (a file), or put it in "
                f"keys/{role}.pem.",
            )
        return [key.signer]


def keys_folder(keys_dir: Path, env: Mapping[str, str]) -> Path:
    """Where online keys (and development keys) live: COMMONSHELF_KEYS_DIR, else keys_dir."""
    return Path(env.get("COMMONSHELF_KEYS_DIR") or keys_dir)


def offline_folder(keys_dir: Path, env: Mapping[str, str], given: Path | None = None) -> Path:
    """Where root keys live: `given`, else COMMONSHELF_OFFLINE_KEYS_DIR, else keys/offline."""
    named = given or env.get("COMMONSHELF_OFFLINE_KEYS_DIR")
    return Path(named) if named else keys_folder(keys_dir, env) / "offline"


def _signer(data: bytes, role: str, where: str) -> CryptoSigner:
    try:
        return CryptoSigner(load_pem_private_key(data.strip() + b"\n", None))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # never echoes the key
        raise ReleaseError(
            f"The {role} key {where} cannot be loaded ({str(exc).split('.')[0]}).",
            "restore the PEM (PKCS#8, unencrypted) key it held.",
        ) from None


def _from_file(path: Path, role: str, named_by: str = "") -> HeldKey:
    if not path.is_file():
        raise ReleaseError(
            f"{named_by} names {path}, which does not exist.",
            "point it at the role's private key file.",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReleaseError(
            f"The {role} key {path} cannot be read ({exc.strerror}).",
            "check its owner and mode (0600, readable by the release job's user).",
        ) from None
    return HeldKey(_signer(data, role, str(path)), str(path), path, bool(named_by))


def _from_env(env: Mapping[str, str], variable: str, role: str) -> Iterator[HeldKey]:
    """The key in `variable`_PEM, and the one in the file `variable` names, if set."""
    pem = env.get(f"{variable}_PEM", "").strip()
    if pem:
        where = f"${variable}_PEM"
        yield HeldKey(_signer(pem.encode(), role, where), where, None, True)
    named = env.get(variable, "").strip()
    if named:
        yield _from_file(Path(named), role, variable)


def _root_keys(folder: Path, offline: Path, env: Mapping[str, str]) -> list[HeldKey]:
    found = list(_from_env(env, "COMMONSHELF_KEY_ROOT", Root.type))
    numbered = sorted(
        {
            int(m.group(1))
            for name in env
            if (m := re.fullmatch(r"COMMONSHELF_KEY_ROOT_(\d+)(_PEM)?", name))
        }
    )
    for number in numbered:
        found += _from_env(env, f"COMMONSHELF_KEY_ROOT_{number}", Root.type)
    if env.get("COMMONSHELF_OFFLINE_KEYS_DIR") and not offline.is_dir():
        raise ReleaseError(
            f"COMMONSHELF_OFFLINE_KEYS_DIR names {offline}, which is not a folder.",
            "point it at the folder holding the root-*.pem keys (e.g. a mounted USB stick).",
        )
    files = sorted(offline.glob("root-*.pem")) if offline.is_dir() else []
    found += [
        _from_file(path, Root.type) for path in [*files, folder / "root.pem"] if path.is_file()
    ]
    unique: dict[str, HeldKey] = {}
    for key in found:
        unique.setdefault(key.keyid, key)
    return list(unique.values())


def load_keys(
    keys_dir: Path, env: Mapping[str, str] | None = None, *, offline: Path | None = None
) -> SigningKeys:
    """Every key this process can find (see the module's docstring); generates nothing."""
    env = os.environ if env is None else env
    folder = keys_folder(keys_dir, env)
    online: dict[str, HeldKey] = {}
    for role in ONLINE:
        variable = f"COMMONSHELF_KEY_{role.upper()}"
        held = next(_from_env(env, variable, role), None)
        if held is None and (folder / f"{role}.pem").is_file():
            held = _from_file(folder / f"{role}.pem", role)
        if held is not None:
            online[role] = held
    root = _root_keys(folder, offline_folder(keys_dir, env, offline), env)
    return SigningKeys(online, tuple(root))


def load_or_create_keys(
    keys_dir: Path, env: Mapping[str, str] | None = None, *, published: str | None = None
) -> tuple[SigningKeys, list[str]]:
    """The keys found; with none at all, development keys made now in the keys folder (one
    root key, threshold 1). Returns the keys and the roles whose keys were made (the caller
    warns): a demo needs no setup, a real repository runs `invoke keys.init` once. With a
    `published` repository configured, missing keys are an error instead: keys made now
    could never sign its chain, and would be left lying about."""
    env = os.environ if env is None else env
    keys = load_keys(keys_dir, env)
    if keys.online or keys.root:
        return keys, []
    folder = keys_folder(keys_dir, env)
    if published is not None:
        raise ReleaseError(
            f"No signing key found (in {folder} or COMMONSHELF_KEY_<ROLE>_PEM) for the "
            f"published repository {published}; nothing was signed.",
            "give this job the repository's online keys (COMMONSHELF_KEY_TARGETS_PEM, "
            "COMMONSHELF_KEY_SNAPSHOT_PEM, COMMONSHELF_KEY_TIMESTAMP_PEM); development keys "
            "are only made when no published repository is configured.",
        )
    refuse_unsafe_folder(folder)
    for role in ROLES:
        write_key(folder / f"{role}.pem", CryptoSigner.generate_ed25519())
    return load_keys(keys_dir, env), list(ROLES)


def write_key(path: Path, signer: CryptoSigner) -> None:
    """A private key file, mode 0600, in a folder only its owner can enter (made 0700)."""
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
    write_bytes_atomic(path, signer.private_bytes, mode=0o600)


def refuse_unsafe_folder(folder: Path, public: Path | None = None) -> None:
    """Refuse to put keys in the published folder, or anywhere in a git work tree that git
    would track (keys/ is ignored by the project's .gitignore)."""
    target = folder.resolve()
    if public is not None and target.is_relative_to(public.resolve()):
        raise ReleaseError(
            f"Keys would be written into {folder}, inside the published folder {public}.",
            "name a key folder outside it (the default is keys/).",
        )
    probe = target
    while not probe.is_dir():  # the nearest folder that exists, for git to run in
        probe = probe.parent
    try:
        run(["git", "-C", str(probe), "rev-parse", "--show-toplevel"], fix="", timeout=10)
    except CommonshelfError:
        return  # not in a git work tree (or no git): nothing could commit the keys
    try:
        run(
            ["git", "-C", str(probe), "check-ignore", "-q", str(target / "x.pem")],
            fix="",
            timeout=10,
        )
    except CommonshelfError:
        raise ReleaseError(
            f"{folder} is inside a git work tree and not ignored: a key written there could "
            "be committed.",
            "use keys/ (ignored by .gitignore), add the folder to .gitignore, or name a "
            "folder outside the repository.",
        ) from None
