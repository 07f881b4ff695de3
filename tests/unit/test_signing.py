"""The TUF publisher: layout, versioning, key handling and all-or-nothing publishes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

from commonshelf.catalogue import signing
from commonshelf.catalogue.signing import Expiry, Publisher, load_or_create_keys
from commonshelf.ci.contract_for import compose_target
from commonshelf.platform.errors import ReleaseError, TrustError
from commonshelf.platform.fsutil import write_bytes_atomic

COMPOSE = compose_target("web", "1.0.0+1.2")  # where the release puts a version's compose file


def _snapshot_of(public: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(public)): p.read_bytes() for p in sorted(public.rglob("*")) if p.is_file()
    }


@pytest.fixture
def keys(tmp_path: Path) -> signing.SigningKeys:
    return load_or_create_keys(tmp_path / "keys", env={})[0]


def test_keys_are_generated_once_with_private_permissions(tmp_path: Path) -> None:
    first, created = load_or_create_keys(tmp_path / "keys", env={})
    assert created == ["root", "targets", "snapshot", "timestamp"]
    for path in first.paths.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_or_create_keys(tmp_path / "keys", env={})
    assert created_again == []
    assert all(first.keyid(r) == again.keyid(r) for r in signing.ROLES)
    assert len({first.keyid(r) for r in signing.ROLES}) == 4


def test_environment_names_key_files_and_never_generates_them(tmp_path: Path) -> None:
    load_or_create_keys(tmp_path / "a", env={})
    env = {
        "COMMONSHELF_KEYS_DIR": str(tmp_path / "a"),
        "COMMONSHELF_KEY_TIMESTAMP": str(tmp_path / "a" / "timestamp.pem"),
    }
    keys, created = load_or_create_keys(tmp_path / "unused", env=env)
    assert created == [] and not (tmp_path / "unused").exists()
    assert keys.paths["timestamp"] == tmp_path / "a" / "timestamp.pem"
    with pytest.raises(ReleaseError, match="COMMONSHELF_KEY_ROOT names"):
        load_or_create_keys(tmp_path / "b", env={"COMMONSHELF_KEY_ROOT": str(tmp_path / "no.pem")})


def test_first_publish_writes_the_tuf_layout(tmp_path: Path, keys: signing.SigningKeys) -> None:
    public = tmp_path / "public"
    result = Publisher(public, keys).publish({"catalog.json": b"{}", COMPOSE: b"services: {}"})
    assert (
        result.root_version,
        result.targets_version,
        result.snapshot_version,
        result.timestamp_version,
    ) == (1, 1, 1, 1)
    names = {p.name for p in (public / "metadata").iterdir()}
    assert names == {"1.root.json", "1.targets.json", "1.snapshot.json", "timestamp.json"}
    root = Metadata[Root].from_file(str(public / "metadata" / "1.root.json"))
    assert root.signed.consistent_snapshot
    root.signed.verify_delegate("root", root.signed_bytes, root.signatures)
    for role, cls in (("targets", Targets), ("snapshot", Snapshot), ("timestamp", Timestamp)):
        name = "timestamp.json" if role == "timestamp" else f"1.{role}.json"
        md = Metadata[cls].from_file(str(public / "metadata" / name))  # type: ignore[valid-type]
        root.signed.verify_delegate(role, md.signed_bytes, md.signatures)
    targets = list((public / "targets").rglob("*.compose.yml"))
    assert len(targets) == 1 and targets[0].parent == public / "targets" / "apps/web/1.0.0+1.2"


def test_versions_move_only_when_content_changes(tmp_path: Path, keys: signing.SigningKeys) -> None:
    publisher = Publisher(tmp_path / "public", keys)
    publisher.publish({"catalog.json": b"1", COMPOSE: b"a"})
    same = publisher.publish({"catalog.json": b"1"})
    assert not same.changed and same.written == () and same.targets_version == 1
    newer = publisher.publish({"catalog.json": b"2"})
    assert newer.changed and (newer.targets_version, newer.snapshot_version) == (2, 2)
    targets = Metadata[Targets].from_file(str(tmp_path / "public/metadata/2.targets.json"))
    assert set(targets.signed.targets) == {"catalog.json", COMPOSE}  # earlier targets kept
    assert len(list((tmp_path / "public/targets").glob("*.catalog.json"))) == 2


def test_timestamp_is_resigned_when_half_its_life_is_gone(
    tmp_path: Path, keys: signing.SigningKeys
) -> None:
    Publisher(tmp_path / "public", keys, expiry=Expiry(timestamp=7)).publish({"c": b"1"})
    # a release job whose timestamps live less than a day: everything left is "near expiry"
    result = Publisher(tmp_path / "public", keys, expiry=Expiry(timestamp=10_000)).publish({})
    assert result.timestamp_version == 2 and result.targets_version == 1
    assert result.written == ("metadata/timestamp.json",)


def test_keys_the_repository_does_not_trust_are_refused(
    tmp_path: Path, keys: signing.SigningKeys
) -> None:
    Publisher(tmp_path / "public", keys).publish({"c": b"1"})
    before = _snapshot_of(tmp_path / "public")
    other = load_or_create_keys(tmp_path / "other", env={})[0]
    with pytest.raises(TrustError, match=r"is not one that .* trusts for root"):
        Publisher(tmp_path / "public", other).publish({"c": b"2"})
    assert _snapshot_of(tmp_path / "public") == before


def test_a_failed_publish_leaves_public_byte_identical(
    tmp_path: Path, keys: signing.SigningKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    public = tmp_path / "public"
    Publisher(public, keys).publish({"catalog.json": b"1"})
    before = _snapshot_of(public)
    real = write_bytes_atomic

    def failing(path: Path, data: bytes, mode: int = 0o644) -> None:
        if path.name.endswith(".snapshot.json"):
            raise OSError("disk full")
        real(path, data, mode)

    monkeypatch.setattr(signing, "write_bytes_atomic", failing)
    with pytest.raises(OSError, match="disk full"):
        Publisher(public, keys).publish({"catalog.json": b"2", COMPOSE: b"x"})
    assert _snapshot_of(public) == before
