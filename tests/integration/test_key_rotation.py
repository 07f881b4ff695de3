"""Issue 13, "Done means" 1: an installation initialised with `1.root.json` keeps updating
across two root rotations and a timestamp key rotation.

The keys are made and rotated by the real tasks (`invoke keys.init`, `invoke keys.rotate
ROLE`, in a child process, on a private shelf named by COMMONSHELF_ROOT); each release in
between is the release job's own `Publisher` (the rest of `invoke release` needs Docker).
The repository is served over HTTP on loopback by the catalogue server, and read by the
installation's TUF client created as `commonshelf init` creates it. At the end, no file of
public/ and no tracked file of this repository holds a private key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from tuf.api.metadata import Metadata, Root

from commonshelf.catalogue.keys import PEM_MARKER
from commonshelf.catalogue.server import serving
from commonshelf.catalogue.signing import Publisher, load_keys
from commonshelf.installation.subscription import Subscription

from ..conftest import REPO

CATALOG = "catalog.json"


def _invoke(shelf: Path, *args: str) -> str:
    """`invoke ARGS…` from this repository's tasks.py, acting on the shelf at `shelf`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMONSHELF_")}
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
        cwd=shelf,
        env={**env, "COMMONSHELF_ROOT": str(shelf)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _release(shelf: Path, number: int) -> bytes:
    """What the release job publishes: a new catalogue, signed with the online keys."""
    content = b'{"release": %d}' % number
    runner = shelf / "runner-has-no-root-keys"  # as in CI: the online keys alone
    runner.mkdir(exist_ok=True)
    keys = load_keys(shelf / "keys", {"COMMONSHELF_OFFLINE_KEYS_DIR": str(runner)})
    assert not keys.root and set(keys.online) == {"targets", "snapshot", "timestamp"}
    Publisher(shelf / "public", keys).publish({CATALOG: content})
    return content


def _poll(home: Path) -> bytes:
    """An installation's next command: refresh once, then read the verified catalogue."""
    subscription = Subscription.open(home)
    subscription.refresh()
    return subscription.fetch(CATALOG)


def _trusted_root(home: Path) -> Metadata[Root]:
    return Metadata[Root].from_file(str(home / "metadata" / "root.json"))


def _key_material(folder: Path) -> set[bytes]:
    """For each private key file: its PEM body and its raw private bytes."""
    found: set[bytes] = set()
    for path in folder.rglob("*.pem"):
        pem = path.read_bytes()
        key = load_pem_private_key(pem, None)
        found.add(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
        found.add(b"".join(pem.splitlines()[1:-1]))  # the base64 body
    return found


def _holding_secrets(files: list[Path], secrets: set[bytes]) -> list[str]:
    held = []
    for path in files:
        data = path.read_bytes()
        if PEM_MARKER in data or any(secret in data for secret in secrets):
            held.append(str(path))
    return held


def test_an_installation_follows_two_root_rotations_and_a_timestamp_rotation(
    tmp_path: Path,
) -> None:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    said = _invoke(shelf, "keys.init")
    assert "2 of its 3 keys" in said and "COMMONSHELF_KEY_TIMESTAMP_PEM" in said
    first_root = (shelf / "public" / "metadata" / "1.root.json").read_bytes()
    secrets = _key_material(shelf / "keys")
    content = _release(shelf, 1)
    with serving(shelf / "public") as url:
        home = tmp_path / "home" / "tuf"  # `commonshelf init` subscribes its home's tuf/
        for folder in ("home", "idle", "fresh"):
            (tmp_path / folder).mkdir()
        Subscription.create(home, url, first_root, verify=True)
        assert Subscription.open(home).fetch(CATALOG) == content
        idle = tmp_path / "idle" / "tuf"  # an installation that sleeps through the rotations
        Subscription.create(idle, url, first_root, verify=True)

        for number, role in enumerate(["root", "root", "timestamp"], start=2):
            revoked = {k.keyid for k in load_keys(shelf / "keys", {}).root}
            said = _invoke(shelf, "keys.rotate", role)
            assert f"Rotated {role}: root v{number}" in said, said
            secrets |= _key_material(shelf / "keys")
            content = _release(shelf, number)
            assert _poll(home) == content
            trusted = _trusted_root(home).signed
            assert trusted.version == number
            if role == "root":  # the old keys are revoked, and their files deleted
                assert "Deleted the revoked key" in said
                assert not revoked & set(trusted.roles["root"].keyids)
                assert not revoked & {k.keyid for k in load_keys(shelf / "keys", {}).root}
            else:
                timestamp_key = load_keys(shelf / "keys", {}).online["timestamp"].keyid
                assert trusted.roles["timestamp"].keyids == [timestamp_key]

        # one poll walks every root in turn; a new installation starts from 1.root.json too
        assert _poll(idle) == content and _trusted_root(idle).signed.version == 4
        fresh = tmp_path / "fresh" / "tuf"
        assert Subscription.create(fresh, url, first_root, verify=True).fetch(CATALOG) == content
        assert (home / "pinned-root.json").read_bytes() == first_root  # the anchor never moves

    # nothing secret in what is published, nor in anything git tracks
    key_file = next((shelf / "keys").rglob("*.pem"))
    assert _holding_secrets([key_file], secrets)  # the scan does see a key
    published = [p for p in (shelf / "public").rglob("*") if p.is_file()]
    assert len(published) > 10 and not _holding_secrets(published, secrets)
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=False
    )
    if tracked.returncode == 0:  # a git checkout (a source tarball has nothing tracked)
        files = [REPO / name for name in tracked.stdout.decode().split("\0") if name]
        if (REPO / "keys").is_dir():  # this checkout's own signing keys, if it has any
            secrets |= _key_material(REPO / "keys")
        present = [path for path in files if path.is_file()]
        assert len(present) > 100 and not _holding_secrets(present, secrets)
