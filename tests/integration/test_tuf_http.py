"""Installations read the repository over real HTTP with real signatures, and refuse bad data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Timestamp
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient import Updater

from commonshelf.catalogue.server import serving
from commonshelf.catalogue.signing import Publisher, SigningKeys, load_or_create_keys
from commonshelf.installation.subscription import Subscription
from commonshelf.platform.errors import TrustError

from ..conftest import free_port


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[tuple[str, Path, SigningKeys]]:
    """A published repository served by a static HTTP server on loopback."""
    public = tmp_path / "public"
    keys = load_or_create_keys(tmp_path / "keys", env={})[0]
    Publisher(public, keys).publish({"catalog.json": b'{"v": 1}'})
    with serving(public) as url:
        yield url, public, keys


def _root(public: Path) -> bytes:
    return (public / "metadata" / "1.root.json").read_bytes()


def test_stock_updater_with_only_the_first_root(
    repo: tuple[str, Path, SigningKeys], tmp_path: Path
) -> None:
    url, public, _ = repo
    client = tmp_path / "client"
    client.mkdir()
    updater = Updater(
        str(client), f"{url}/metadata/", str(client), f"{url}/targets/", bootstrap=_root(public)
    )
    updater.refresh()
    info = updater.get_targetinfo("catalog.json")
    assert info is not None
    assert Path(updater.download_target(info)).read_bytes() == b'{"v": 1}'


def test_subscription_follows_new_publishes(
    repo: tuple[str, Path, SigningKeys], tmp_path: Path
) -> None:
    url, public, keys = repo
    sub = Subscription.create(tmp_path / "home", url, _root(public))
    assert sub.fetch("catalog.json") == b'{"v": 1}'
    Publisher(public, keys).publish({"catalog.json": b'{"v": 2}'})
    assert Subscription.open(tmp_path / "home").fetch("catalog.json") == b'{"v": 2}'


def test_changed_target_is_refused_and_the_last_good_copy_kept(
    repo: tuple[str, Path, SigningKeys],
    tmp_path: Path,
) -> None:
    url, public, _ = repo
    home = tmp_path / "home"
    Subscription.create(home, url, _root(public)).fetch("catalog.json")
    [signed] = (public / "targets").glob("*.catalog.json")
    signed.write_bytes(b'{"v": 9}')
    # an installation that never held it downloads it and refuses it
    fresh = tmp_path / "fresh"
    with pytest.raises(TrustError, match=r"catalog\.json from .* does not match its signed hash"):
        Subscription.create(fresh, url, _root(public)).fetch("catalog.json")
    assert not (fresh / "targets" / "catalog.json").exists()
    # one that holds the verified copy keeps using it (checked against the signed hash)
    assert Subscription.open(home).fetch("catalog.json") == b'{"v": 1}'


def test_expired_timestamp_is_refused(repo: tuple[str, Path, SigningKeys], tmp_path: Path) -> None:
    url, public, keys = repo
    path = public / "metadata" / "timestamp.json"
    timestamp = Metadata[Timestamp].from_file(str(path))
    timestamp.signed.version += 1
    timestamp.signed.expires = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    timestamp.sign(keys.signers["timestamp"])
    path.write_bytes(timestamp.to_bytes(JSONSerializer()))
    sub = Subscription.create(tmp_path / "home", url, _root(public))
    with pytest.raises(TrustError, match=r"expired.*Fix: the publisher must run `invoke refresh`"):
        sub.fetch("catalog.json")


def test_timestamp_signed_by_another_key_is_refused(
    repo: tuple[str, Path, SigningKeys], tmp_path: Path
) -> None:
    url, public, _ = repo
    intruder = load_or_create_keys(tmp_path / "intruder", env={})[0]
    path = public / "metadata" / "timestamp.json"
    timestamp = Metadata[Timestamp].from_file(str(path))
    timestamp.signed.version += 1
    timestamp.sign(intruder.signers["timestamp"])
    path.write_bytes(timestamp.to_bytes(JSONSerializer()))
    with pytest.raises(TrustError, match="not signed by trusted keys"):
        Subscription.create(tmp_path / "home", url, _root(public)).refresh()


def test_a_different_root_needs_force(repo: tuple[str, Path, SigningKeys], tmp_path: Path) -> None:
    url, public, _ = repo
    Subscription.create(tmp_path / "home", url, _root(public))
    other = tmp_path / "other"
    Publisher(other, load_or_create_keys(tmp_path / "k2", env={})[0]).publish({"c": b"1"})
    with pytest.raises(TrustError, match="already trusts a different root"):
        Subscription.create(tmp_path / "home", url, _root(other))
    Subscription.create(tmp_path / "home", url, _root(other), force=True)
    with pytest.raises(TrustError, match="not TUF root metadata"):
        Subscription.create(tmp_path / "home2", url, b"{}")


def test_unreachable_repository_is_named(
    repo: tuple[str, Path, SigningKeys], tmp_path: Path
) -> None:
    _, public, _ = repo
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(
        TrustError, match=rf"{dead} could not be fetched: the repository is unreachable"
    ):
        Subscription.create(tmp_path / "home", dead, _root(public)).refresh()


def test_a_refused_root_is_not_left_pinned(
    repo: tuple[str, Path, SigningKeys], tmp_path: Path
) -> None:
    """init with a root that is not the repository's is refused, and the home is as it was:
    the next init with the right root needs no --force."""
    url, public, _ = repo
    other = tmp_path / "other"
    Publisher(other, load_or_create_keys(tmp_path / "k2", env={})[0]).publish({"c": b"1"})
    home = tmp_path / "home"
    with pytest.raises(TrustError, match="not signed by trusted keys"):
        Subscription.create(home, url, _root(other), verify=True)
    assert not home.exists()
    sub = Subscription.create(home, url, _root(public), verify=True)  # no --force needed
    assert sub.fetch("catalog.json") == b'{"v": 1}'
    pinned = {p.relative_to(home): p.read_bytes() for p in home.rglob("*") if p.is_file()}
    with pytest.raises(TrustError, match="already trusts a different root"):
        Subscription.create(home, url, _root(other), verify=True)
    with pytest.raises(TrustError, match="not signed by trusted keys"):
        Subscription.create(home, url, _root(other), force=True, verify=True)
    after = {p.relative_to(home): p.read_bytes() for p in home.rglob("*") if p.is_file()}
    assert after == pinned  # a refused --force changes nothing either


def test_an_oversized_metadata_file_is_not_called_unreachable(
    repo: tuple[str, Path, SigningKeys], tmp_path: Path
) -> None:
    url, public, _ = repo
    path = public / "metadata" / "timestamp.json"
    path.write_bytes(path.read_bytes() + b" " * 200_000)  # far over the allowed length
    with pytest.raises(TrustError, match=r"sent a file larger than allowed") as refused:
        Subscription.create(tmp_path / "home", url, _root(public)).refresh()
    assert "unreachable" not in str(refused.value)
