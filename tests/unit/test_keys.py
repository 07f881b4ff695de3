"""Threshold keys, rotation and expiry on the publisher's side (real keys and signatures, a
clock moved by hand): what `invoke keys.init`, `keys.rotate` and `refresh` do to public/."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

from commonshelf.catalogue.expiry import Expiry
from commonshelf.catalogue.keys import (
    PEM_MARKER,
    load_keys,
    load_or_create_keys,
    refuse_unsafe_folder,
)
from commonshelf.catalogue.rotation import init_keys, rotate
from commonshelf.catalogue.signing import Publisher
from commonshelf.platform.errors import ReleaseError, TrustError

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class Clock:
    """The publisher's time, moved by the test."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _root(public: Path, version: int) -> Metadata[Root]:
    return Metadata[Root].from_file(str(public / "metadata" / f"{version}.root.json"))


def _repository(tmp_path: Path, clock: Clock) -> tuple[Path, Path]:
    """keys.init, then a first release of one catalogue."""
    public, keys = tmp_path / "public", tmp_path / "keys"
    init_keys(public, keys, env={}, expiry=Expiry(), clock=clock)
    _publisher(public, keys, clock).publish({"catalog.json": b"1"})
    return public, keys


def _publisher(
    public: Path, keys: Path, clock: Clock, env: dict[str, str] | None = None
) -> Publisher:
    return Publisher(public, load_keys(keys, env or {}), expiry=Expiry(), clock=clock)


def test_init_makes_a_threshold_root_offline_and_private_key_files(tmp_path: Path) -> None:
    public, keys = tmp_path / "public", tmp_path / "keys"
    made = init_keys(public, keys, env={}, expiry=Expiry(), clock=Clock())
    assert made.threshold == 2 and len(made.root_keys) == 3
    assert {p.parent for p in made.root_keys} == {keys / "offline"}
    assert set(made.online_keys.values()) == {
        keys / f"{r}.pem" for r in ("targets", "snapshot", "timestamp")
    }
    for path in (*made.root_keys, *made.online_keys.values()):
        assert _mode(path) == 0o600
    assert _mode(keys) == _mode(keys / "offline") == 0o700
    root = _root(public, 1)
    assert made.root == public / "metadata" / "1.root.json"
    assert root.signed.roles["root"].threshold == 2 and len(root.signed.roles["root"].keyids) == 3
    assert root.signed.expires == T0 + timedelta(days=365) and root.signed.consistent_snapshot
    root.signed.verify_delegate("root", root.signed_bytes, root.signatures)
    held = load_keys(keys, {})
    assert [k.keyid for k in held.trusted_root_keys(root.signed)] == [k.keyid for k in held.root]
    for role in ("targets", "snapshot", "timestamp"):
        assert root.signed.roles[role].keyids == [held.online[role].keyid]
    assert [p.name for p in (public / "metadata").iterdir()] == ["1.root.json"]


def test_init_refuses_a_repository_existing_keys_and_unsafe_shapes(tmp_path: Path) -> None:
    public, keys = _repository(tmp_path, Clock())
    with pytest.raises(ReleaseError, match=r"already holds a repository \(root v1\).*keys\.rotate"):
        init_keys(public, keys, env={})
    with pytest.raises(ReleaseError, match=r"Signing keys exist already: .*targets\.pem"):
        init_keys(tmp_path / "elsewhere", keys, env={})
    with pytest.raises(ReleaseError, match="threshold 4 is not possible"):
        init_keys(tmp_path / "p2", tmp_path / "k2", threshold=4, env={})
    inside = tmp_path / "p3"
    with pytest.raises(ReleaseError, match="inside the published folder"):
        init_keys(inside, tmp_path / "k3", offline=inside / "offline", env={})
    assert not inside.exists() and not (tmp_path / "k2").exists() and not (tmp_path / "k3").exists()


def test_keys_come_from_pem_variables_files_and_the_offline_folder(tmp_path: Path) -> None:
    init_keys(tmp_path / "public", tmp_path / "made", env={})
    made = tmp_path / "made"
    roots = sorted((made / "offline").glob("root-*.pem"))
    env = {
        "COMMONSHELF_KEY_TIMESTAMP_PEM": (made / "timestamp.pem").read_text(),
        "COMMONSHELF_KEY_TIMESTAMP": str(tmp_path / "ignored-when-the-pem-is-given.pem"),
        "COMMONSHELF_KEY_SNAPSHOT": str(made / "snapshot.pem"),
        "COMMONSHELF_KEY_ROOT_1_PEM": roots[0].read_text(),
        "COMMONSHELF_KEY_ROOT_2": str(roots[1]),
        "COMMONSHELF_OFFLINE_KEYS_DIR": str(tmp_path / "empty"),
    }
    (tmp_path / "empty").mkdir()
    held = load_keys(tmp_path / "nothing-here", env)
    assert held.online["timestamp"].where == "$COMMONSHELF_KEY_TIMESTAMP_PEM"
    assert held.online["timestamp"].from_env and held.online["timestamp"].path is None
    assert held.online["snapshot"].path == made / "snapshot.pem" and "targets" not in held.online
    assert [k.where for k in held.root] == ["$COMMONSHELF_KEY_ROOT_1_PEM", str(roots[1])]
    root = _root(tmp_path / "public", 1)
    assert len(held.trusted_root_keys(root.signed)) == 2  # enough to rotate
    # a damaged secret is named, never echoed
    marker = PEM_MARKER.decode()
    secret = f"-----BEGIN {marker}\nAAAAsecretsecret\n-----END {marker}\n"
    with pytest.raises(
        ReleaseError, match=r"targets key \$COMMONSHELF_KEY_TARGETS_PEM cannot"
    ) as bad:
        load_keys(tmp_path, {"COMMONSHELF_KEY_TARGETS_PEM": secret})
    assert "secretsecret" not in str(bad.value)
    with pytest.raises(ReleaseError, match=r"COMMONSHELF_OFFLINE_KEYS_DIR names .* not a folder"):
        load_keys(tmp_path, {"COMMONSHELF_OFFLINE_KEYS_DIR": str(tmp_path / "usb")})


def test_development_keys_only_when_there_is_no_key_at_all(tmp_path: Path) -> None:
    init_keys(tmp_path / "public", tmp_path / "made", env={})
    pem = (tmp_path / "made" / "timestamp.pem").read_text()
    keys, created = load_or_create_keys(tmp_path / "ci", {"COMMONSHELF_KEY_TIMESTAMP_PEM": pem})
    assert created == [] and not (tmp_path / "ci").exists() and list(keys.online) == ["timestamp"]
    keys, created = load_or_create_keys(tmp_path / "demo", {})
    assert created == ["root", "targets", "snapshot", "timestamp"] and len(keys.root) == 1
    result = Publisher(tmp_path / "demo-public", keys, expiry=Expiry()).publish({"c": b"1"})
    root = _root(tmp_path / "demo-public", 1)
    assert result.root_version == 1 and root.signed.roles["root"].threshold == 1


def test_no_development_keys_for_a_configured_published_repository(tmp_path: Path) -> None:
    """A job pointed at a published repository without its keys stops saying which keys it
    needs, and leaves no development key behind (they could never sign that chain)."""
    published = "https://catalogue.example/"
    with pytest.raises(ReleaseError, match=r"No signing key found.*catalogue\.example") as err:
        load_or_create_keys(tmp_path / "ci", {}, published=published)
    assert "COMMONSHELF_KEY_TIMESTAMP_PEM" in err.value.fix
    assert not (tmp_path / "ci").exists()
    init_keys(tmp_path / "public", tmp_path / "made", env={})
    pem = (tmp_path / "made" / "targets.pem").read_text()
    keys, created = load_or_create_keys(
        tmp_path / "ci", {"COMMONSHELF_KEY_TARGETS_PEM": pem}, published=published
    )
    assert created == [] and list(keys.online) == ["targets"]


def test_expiry_defaults_and_configuration() -> None:
    assert Expiry() == Expiry(root=365, targets=90, snapshot=7, timestamp=1)
    env = {"COMMONSHELF_EXPIRY_TIMESTAMP": "36h", "COMMONSHELF_EXPIRY_SNAPSHOT": "2w"}
    assert Expiry.from_env(env) == Expiry(snapshot=14, timestamp=1.5)
    assert Expiry.from_env({"COMMONSHELF_EXPIRY_ROOT": "730"}).lifetime("root") == timedelta(
        days=730
    )
    for wrong in ("0", "1y", "-1d", "30m", "99999"):
        with pytest.raises(ReleaseError, match=f"COMMONSHELF_EXPIRY_TARGETS='{wrong}' is not a"):
            Expiry.from_env({"COMMONSHELF_EXPIRY_TARGETS": wrong})


def test_refresh_resigns_what_is_due_and_nothing_else(tmp_path: Path) -> None:
    clock = Clock()
    public, keys = _repository(tmp_path, clock)

    def refresh_at(**delta: float) -> tuple[str, ...]:
        clock.now = T0 + timedelta(**delta)
        return _publisher(public, keys, clock).refresh().written

    clock.advance(hours=11)  # a release with nothing new: the timestamp has half its day left
    assert _publisher(public, keys, clock).publish({"catalog.json": b"1"}).written == ()
    assert refresh_at(hours=11) == ("metadata/timestamp.json",)  # refresh always re-signs it
    assert refresh_at(hours=13) == ("metadata/timestamp.json",)
    assert refresh_at(days=4) == ("metadata/2.snapshot.json", "metadata/timestamp.json")
    assert refresh_at(days=46) == (
        "metadata/2.targets.json",
        "metadata/3.snapshot.json",
        "metadata/timestamp.json",
    )
    targets = Metadata[Targets].from_file(str(public / "metadata" / "2.targets.json"))
    assert set(targets.signed.targets) == {"catalog.json"}  # re-signed, not changed
    assert targets.signed.expires == T0 + timedelta(days=46 + 90)
    timestamp = Metadata[Timestamp].from_file(str(public / "metadata" / "timestamp.json"))
    assert timestamp.signed.version == 5 and timestamp.signed.expires == clock.now + timedelta(
        days=1
    )
    with pytest.raises(ReleaseError, match="holds no published repository"):
        _publisher(tmp_path / "none", keys, clock).refresh()


def test_a_root_due_without_its_keys_is_a_note_and_expired_a_refusal(tmp_path: Path) -> None:
    clock = Clock()
    public, keys = _repository(tmp_path, clock)
    online = {
        f"COMMONSHELF_KEY_{r.upper()}": str(keys / f"{r}.pem")
        for r in ("targets", "snapshot", "timestamp")
    }
    ci = {**online, "COMMONSHELF_KEYS_DIR": str(tmp_path / "runner")}  # no root key here
    clock.advance(days=200)
    result = _publisher(public, keys, clock, ci).refresh()
    [note] = result.notes
    assert (
        "root.json v1 expires at 2027-11-27T09:00:00Z" in note
        and "2 of the offline root keys" in note
    )
    assert result.root_version == 1 and "metadata/timestamp.json" in result.written
    assert (
        _publisher(public, keys, clock).refresh().root_version == 2
    )  # the keys at hand: re-signed
    assert _root(public, 2).signed.expires == clock.now + timedelta(days=365)
    clock.advance(days=366)
    before = _files(public)
    with pytest.raises(
        ReleaseError, match=r"Root v2 expired at .* Fix: run `invoke refresh` where 2"
    ):
        _publisher(public, keys, clock, ci).refresh()
    assert _files(public) == before


def test_a_rotated_root_is_signed_by_a_threshold_of_the_old_and_the_new_keys(
    tmp_path: Path,
) -> None:
    clock = Clock()
    public, keys = _repository(tmp_path, clock)
    old_files = sorted((keys / "offline").glob("root-*.pem"))
    done = rotate(public, keys, "root", threshold=3, count=4, env={}, expiry=Expiry(), clock=clock)
    assert done.root_version == 2 and done.threshold == 3 and len(done.new_keys) == 4
    assert set(done.removed) == set(old_files) and not any(p.exists() for p in old_files)
    assert all(_mode(path) == 0o600 for path in done.new_keys)
    old, new = _root(public, 1), _root(public, 2)
    check = new.signed.get_root_verification_result(old.signed, new.signed_bytes, new.signatures)
    assert check.verified and len(check.first.signed) == 3 and len(check.second.signed) == 4
    # one old signature fewer than the old threshold, and the installations' check fails
    for keyid in list(old.signed.roles["root"].keyids)[:2]:
        del new.signatures[keyid]
    assert not new.signed.get_root_verification_result(
        old.signed, new.signed_bytes, new.signatures
    ).verified
    # root alone changed: installations find 2.root.json by probing; nothing else re-signed
    assert done.published.written == ("metadata/2.root.json",)


def test_rotating_an_online_key_re_signs_its_role_and_what_names_it(tmp_path: Path) -> None:
    clock = Clock()
    public, keys = _repository(tmp_path, clock)
    old_key = (keys / "snapshot.pem").read_bytes()
    done = rotate(public, keys, "snapshot", env={}, expiry=Expiry(), clock=clock)
    assert done.published.written == (
        "metadata/2.root.json",
        "metadata/2.snapshot.json",
        "metadata/timestamp.json",
    )
    assert (keys / "snapshot.pem").read_bytes() != old_key and _mode(keys / "snapshot.pem") == 0o600
    assert not list(keys.glob("*.next"))
    root = _root(public, 2)
    snapshot = Metadata[Snapshot].from_file(str(public / "metadata" / "2.snapshot.json"))
    root.signed.verify_delegate("snapshot", snapshot.signed_bytes, snapshot.signatures)
    assert root.signed.roles["snapshot"].keyids == [load_keys(keys, {}).online["snapshot"].keyid]


def test_a_rotation_that_cannot_complete_changes_nothing(tmp_path: Path) -> None:
    clock = Clock()
    public, keys = _repository(tmp_path, clock)
    (keys / "snapshot.pem").rename(tmp_path / "snapshot.pem")  # targets needs a new snapshot
    before, keys_before = _files(public), _files(keys)
    with pytest.raises(ReleaseError, match="No snapshot key, and this publish must re-sign"):
        rotate(public, keys, "targets", env={}, expiry=Expiry(), clock=clock)
    assert _files(public) == before and _files(keys) == keys_before
    for extra in sorted((keys / "offline").glob("root-*.pem"))[1:]:
        extra.unlink()  # one root key of two needed
    with pytest.raises(TrustError, match=r"needs 2 of the keys of root v1; 1 found"):
        rotate(public, keys, "timestamp", env={}, expiry=Expiry(), clock=clock)
    assert _files(public) == before


def test_a_revoked_key_still_in_a_ci_secret_is_named(tmp_path: Path) -> None:
    clock = Clock()
    public, keys = _repository(tmp_path, clock)
    (keys / "timestamp.pem").rename(tmp_path / "secret.pem")
    ci = {"COMMONSHELF_KEY_TIMESTAMP_PEM": (tmp_path / "secret.pem").read_text()}
    done = rotate(public, keys, "timestamp", env=ci, expiry=Expiry(), clock=clock)
    assert done.revoked_elsewhere == ("$COMMONSHELF_KEY_TIMESTAMP_PEM",)
    assert done.new_keys == (keys / "timestamp.pem",)
    with pytest.raises(
        TrustError, match=r"timestamp key \$COMMONSHELF_KEY_TIMESTAMP_PEM is not one"
    ):
        _publisher(public, keys, clock, ci).refresh()
    assert _publisher(public, keys, clock).publish({"catalog.json": b"2"}).changed


def test_a_development_root_moves_to_offline_threshold_keys(tmp_path: Path) -> None:
    public, keys = tmp_path / "public", tmp_path / "keys"
    Publisher(public, load_or_create_keys(keys, {})[0], expiry=Expiry()).publish({"c": b"1"})
    done = rotate(public, keys, "root", count=3, threshold=2, env={}, expiry=Expiry())
    assert done.removed == (keys / "root.pem",) and not (keys / "root.pem").exists()
    assert {p.parent for p in done.new_keys} == {keys / "offline"}
    assert _root(public, 2).signed.roles["root"].threshold == 2
    assert Publisher(public, load_keys(keys, {}), expiry=Expiry()).publish({"c": b"2"}).changed


def test_keys_are_never_written_where_git_would_track_them() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    refuse_unsafe_folder(REPO / "keys" / "offline")  # ignored by .gitignore
    with pytest.raises(ReleaseError, match="inside a git work tree and not ignored"):
        refuse_unsafe_folder(REPO / "src" / "keys")
