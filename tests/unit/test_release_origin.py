"""The release starts from the published repository (verified against the pinned root), and
writes a catalog.json that is a function of its inputs and names nothing on the machine."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from commonshelf.catalogue import origin, reproducible
from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.signing import Publisher, SigningKeys, load_or_create_keys
from commonshelf.platform.errors import CommonshelfError, ReleaseError, TrustError
from commonshelf.platform.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "catalog.json"


# ---- catalog.json: no machine-local paths, same inputs same bytes


def test_the_committed_catalogue_names_no_place_on_the_releasing_machine() -> None:
    settings = Settings.load(REPO, env={})
    catalog = Catalog.load(CATALOG)
    assert catalog.apps, "the committed catalogue lists released apps"
    assert reproducible.machine_local(catalog, also=(settings.root, settings.state_dir)) == []
    assert reproducible.portable(catalog) == catalog  # already as the release writes it


def _entry_with(catalog: Catalog, changes: str | None = None, **scan: str) -> Catalog:
    """The first version of the first app with its changelog or scan summary's fields
    replaced."""
    app_name, app = sorted(catalog.apps.items())[0]
    version, entry = sorted(app.versions.items())[0]
    vetting = msgspec.structs.replace(
        entry.vetting, scan=msgspec.structs.replace(entry.vetting.scan, **scan)
    )
    entry = msgspec.structs.replace(entry, changes=entry.changes if changes is None else changes)
    versions = {version: msgspec.structs.replace(entry, vetting=vetting)}
    apps = {app_name: msgspec.structs.replace(app, versions=versions)}
    return msgspec.structs.replace(catalog, apps=apps)


def test_machine_paths_are_found_and_made_portable_but_container_paths_are_kept() -> None:
    catalog = Catalog.load(CATALOG)
    local = _entry_with(
        catalog,
        vuln_db="/var/lib/commonshelf/trivy-workers/vet_1/db/trivy.db (empty offline DB)",
        summary="no findings (report in /tmp/scan-x/report.json)",
    )
    found = reproducible.machine_local(local)
    assert [line.split(": ")[0].rsplit(".", 1)[1] for line in found] == ["summary", "vuln_db"]
    fixed = reproducible.portable(local)
    [entry] = next(iter(fixed.apps.values())).versions.values()
    assert entry.vetting.scan.vuln_db == "trivy.db (empty offline DB)"
    assert entry.vetting.scan.summary == "no findings (report in report.json)"
    assert reproducible.machine_local(fixed) == []
    # the runtime contract's paths are the container's (data volumes, health path): kept
    assert any(d.path.startswith("/var/lib/") for d in entry.runtime.data) or entry.runtime.data
    # prose may name the container's paths and URLs, not the releasing machine's folders
    prose = _entry_with(catalog, changes="- Serves /srv/www/site at https://x.example/a/b")
    assert reproducible.machine_local(prose) == []
    built = _entry_with(catalog, changes="- Built from /tmp/build-x/site")
    assert [
        line.rsplit(": ", 1)[0].rsplit(".", 1)[1] for line in reproducible.machine_local(built)
    ] == ["changes"]
    # a registry reference is not a path
    registry = _entry_with(catalog, vuln_db="127.0.0.1:5000/commonshelf/trivy-db@sha256:ab… built")
    assert reproducible.machine_local(registry) == []
    # a path the release cannot make portable is refused, naming the field
    other = _entry_with(catalog, fail_on="blocking per /work/main/shared/policy/scan.yml")
    with pytest.raises(ReleaseError, match=r"fail_on: blocking per /work/main"):
        reproducible.release_bytes(other)
    assert reproducible.machine_local(other, also=[Path("/work/main")])


def test_the_release_time_comes_from_the_source_not_the_clock(tmp_path: Path) -> None:
    assert (
        reproducible.source_date(tmp_path, {"SOURCE_DATE_EPOCH": "1700000000"})
        == "2023-11-14T22:13:20Z"
    )
    with pytest.raises(CommonshelfError, match="SOURCE_DATE_EPOCH is 'soon'"):
        reproducible.source_date(tmp_path, {"SOURCE_DATE_EPOCH": "soon"})
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run(
        [*git, "commit", "-q", "--allow-empty", "-m", "x"],
        check=True,
        env={"GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z", "PATH": "/usr/bin:/bin"},
    )
    assert reproducible.source_date(tmp_path, {}) == "2026-01-02T03:04:05Z"
    # same inputs, same bytes
    catalog = msgspec.structs.replace(Catalog.load(CATALOG), generated="2026-01-02T03:04:05Z")
    assert reproducible.release_bytes(catalog) == reproducible.release_bytes(
        Catalog.from_bytes(reproducible.release_bytes(catalog))
    )


# ---- settings


def test_the_published_repository_is_configured_by_url_or_folder(tmp_path: Path) -> None:
    default = Settings.load(tmp_path, env={})
    assert default.published_source is None
    assert default.trust_anchor == tmp_path.resolve() / "shared" / "trust" / "root.json"
    by_url = Settings.load(tmp_path, env={"COMMONSHELF_PUBLISHED_URL": "https://c.example/r/"})
    assert by_url.published_source == "https://c.example/r"
    by_dir = Settings.load(tmp_path, env={"COMMONSHELF_PUBLISHED_DIR": str(tmp_path / "pub")})
    assert by_dir.published_dir == tmp_path.resolve() / "pub"
    with pytest.raises(CommonshelfError, match="Both COMMONSHELF_PUBLISHED_URL and"):
        Settings.load(
            tmp_path,
            env={"COMMONSHELF_PUBLISHED_URL": "https://a", "COMMONSHELF_PUBLISHED_DIR": "/b"},
        )
    with pytest.raises(CommonshelfError, match="not an http"):
        Settings.load(tmp_path, env={"COMMONSHELF_PUBLISHED_URL": "ftp://c.example"})


# ---- the published repository, verified before it is extended


@pytest.fixture
def keys(tmp_path: Path) -> SigningKeys:
    return load_or_create_keys(tmp_path / "keys", env={})[0]


def _published(tmp_path: Path, keys: SigningKeys, *contents: bytes) -> Path:
    host = tmp_path / "host"
    for content in contents:
        Publisher(host, keys).publish({"catalog.json": content})
    return host


def _clone(tmp_path: Path, host: Path, anchor: bytes | None = None) -> Settings:
    """A fresh checkout (no public/) configured with the published folder and its root."""
    root = tmp_path / "clone"
    trust = root / "shared" / "trust"
    trust.mkdir(parents=True)
    (trust / "root.json").write_bytes(
        anchor if anchor is not None else (host / "metadata" / "1.root.json").read_bytes()
    )
    return Settings.load(root, env={"COMMONSHELF_PUBLISHED_DIR": str(host)})


def test_a_fresh_checkout_gets_the_verified_repository(tmp_path: Path, keys: SigningKeys) -> None:
    host = _published(tmp_path, keys, b"1", b"2")
    settings = _clone(tmp_path, host)
    said: list[str] = []
    got = origin.sync(settings, said.append)
    assert got is not None
    assert (got.timestamp_version, got.targets_version, got.catalog) == (2, 2, b"2")
    public = settings.public_dir / "metadata"
    assert (public / "1.root.json").read_bytes() == (host / "metadata/1.root.json").read_bytes()
    assert {p.name for p in public.iterdir()} == {
        "1.root.json",
        "timestamp.json",
        "2.snapshot.json",
        "2.targets.json",
    }
    assert "root v1, timestamp v2, targets v2, 1 target file(s)" in said[-1]
    # a folder that is public/ itself is verified in place
    in_place_settings = Settings.load(
        settings.root, env={"COMMONSHELF_PUBLISHED_DIR": str(settings.public_dir)}
    )
    in_place = origin.sync(in_place_settings)
    assert in_place is not None and in_place.timestamp_version == 2
    assert (public / "2.targets.json").is_file()
    # the next publish from there is the next version of the same chain
    result = Publisher(settings.public_dir, keys).publish({"catalog.json": b"3"})
    assert (result.root_version, result.targets_version, result.timestamp_version) == (1, 3, 3)


def test_nothing_configured_leaves_public_as_it_is(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path, env={})
    assert origin.sync(settings) is None
    assert not settings.public_dir.exists()
    assert origin.base_catalog(settings, None) == Catalog()


def test_a_repository_that_does_not_chain_to_the_pinned_root_is_refused(
    tmp_path: Path, keys: SigningKeys
) -> None:
    host = _published(tmp_path, keys, b"1")
    other = load_or_create_keys(tmp_path / "other-keys", env={})[0]
    stranger = Publisher(tmp_path / "stranger", other)
    stranger.publish({"catalog.json": b"x"})
    anchor = (tmp_path / "stranger" / "metadata" / "1.root.json").read_bytes()
    settings = _clone(tmp_path, host, anchor)
    with pytest.raises(TrustError, match="does not chain to the pinned root"):
        origin.sync(settings)
    assert not settings.public_dir.exists()
    (settings.trust_anchor).unlink()
    with pytest.raises(TrustError, match=r"pinned root .*root\.json is missing"):
        origin.sync(settings)


def test_a_tampered_target_is_refused_and_public_kept(tmp_path: Path, keys: SigningKeys) -> None:
    host = _published(tmp_path, keys, b"1")
    settings = _clone(tmp_path, host)
    origin.sync(settings)
    before = sorted(p.read_bytes() for p in settings.public_dir.rglob("*") if p.is_file())
    [signed] = (host / "targets").glob("*.catalog.json")
    signed.write_bytes(b"9")
    (settings.public_dir / "targets" / signed.name).write_bytes(b"9")  # the copy too
    with pytest.raises(TrustError, match=r"failed verification \(LengthOrHashMismatchError"):
        origin.sync(settings)
    after = sorted(p.read_bytes() for p in settings.public_dir.rglob("*") if p.is_file())
    assert after == sorted(b"9" if b == b"1" else b for b in before)  # not replaced


def test_nothing_published_is_not_a_new_chain(tmp_path: Path, keys: SigningKeys) -> None:
    host = tmp_path / "host"
    (host / "metadata").mkdir(parents=True)
    settings = _clone(tmp_path, host, b"{}")
    with pytest.raises(TrustError, match="not TUF root metadata"):
        origin.sync(settings)
    anchor = _published(tmp_path / "elsewhere", keys, b"1") / "metadata" / "1.root.json"
    settings.trust_anchor.write_bytes(anchor.read_bytes())
    with pytest.raises(ReleaseError, match=r"has no metadata/1\.root\.json: nothing is published"):
        origin.sync(settings)


def test_a_public_folder_ahead_of_the_published_one_is_not_replaced(
    tmp_path: Path, keys: SigningKeys
) -> None:
    host = _published(tmp_path, keys, b"1")
    settings = _clone(tmp_path, host)
    origin.sync(settings)
    Publisher(settings.public_dir, keys).publish({"catalog.json": b"2"})  # not uploaded
    with pytest.raises(ReleaseError, match="timestamp version 2, newer than the published 1"):
        origin.sync(settings)
    Publisher(host, keys).publish({"catalog.json": b"other 2"})  # a fork at version 2
    with pytest.raises(
        ReleaseError, match=r"another \S+\.json than the published one \(timestamp version 2\)"
    ):
        origin.sync(settings)
    Publisher(host, keys).publish({"catalog.json": b"3"})  # published moved on: public/ behind
    got = origin.sync(settings)
    assert got is not None and got.catalog == b"3" and got.timestamp_version == 3


def test_expired_metadata_is_extended_and_named(tmp_path: Path, keys: SigningKeys) -> None:
    host = tmp_path / "host"
    long_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    Publisher(host, keys, clock=lambda: long_ago).publish({"catalog.json": b"1"})
    settings = _clone(tmp_path, host)
    said: list[str] = []
    got = origin.sync(settings, said.append)
    assert got is not None
    assert got.expired == ("root", "snapshot", "targets", "timestamp")
    assert "expired (this publish re-signs them): root, snapshot, targets, timestamp" in said[-1]
    result = Publisher(settings.public_dir, keys).publish({"catalog.json": b"2"})
    assert (result.root_version, result.timestamp_version) == (2, 2)


def test_the_base_catalogue_is_the_published_one_unless_it_lags(
    tmp_path: Path, keys: SigningKeys
) -> None:
    full = CATALOG.read_bytes()
    committed = Catalog.from_bytes(full)
    dropped = sorted(committed.apps)[0]
    lagging = msgspec.structs.replace(
        committed, apps={k: v for k, v in committed.apps.items() if k != dropped}
    ).to_bytes()
    settings = _clone(tmp_path, _published(tmp_path, keys, full))
    settings.catalog_path.write_bytes(lagging)  # the committed copy lags: the published wins
    assert origin.base_catalog(settings, origin.sync(settings)) == committed
    stale = _clone(tmp_path / "b", _published(tmp_path / "b", keys, lagging))
    stale.catalog_path.write_bytes(full)
    with pytest.raises(ReleaseError, match=rf"lists {dropped} .*which the published repository"):
        origin.base_catalog(stale, origin.sync(stale))
