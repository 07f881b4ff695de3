"""Channels and revocation, catalogue side: each channel's view of the full record, the changes
`invoke promote`, `promote-due` and `revoke` make, what versions released before channels
read as, and the one-line refusals of bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from commonshelf.catalogue.catalog import (
    FULL_TARGET,
    Catalog,
    CatalogError,
    channel_target,
    first_fix,
    released_records,
)
from commonshelf.catalogue.contract import (
    Advisory,
    AppEntry,
    Channel,
    PlatformComponent,
    VersionEntry,
)
from commonshelf.catalogue.signing import Publisher, load_or_create_keys
from commonshelf.ci import channels
from commonshelf.ci.republish import catalogue_targets, republish
from commonshelf.installation.state import InstallationConfig
from commonshelf.platform.errors import ReleaseError
from commonshelf.platform.settings import Settings

from ..entries import version_entry

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OLD, MID, NEW = "1.0.0+1", "1.1.0+1", "1.2.0+1"


def _entry(
    released: str = "2026-11-01T00:00:00Z", channel: Channel = "testing", revoked: str = ""
) -> VersionEntry:
    return version_entry(
        released=released, commit="c" * 40, content_hash="h" * 64, channel=channel, revoked=revoked
    )


def _catalog() -> Catalog:
    """web: OLD stable, MID testing for 26 days, NEW testing for 2 days; beta: testing only."""
    advisory = Advisory(
        id="CVE-1", severity="HIGH", package="openssl", affected=(OLD,), fixed_in=MID
    )
    web = AppEntry(
        title="Web",
        description="d",
        category="web",
        versions={
            OLD: _entry(channel="stable"),
            MID: _entry("2026-11-01T00:00:00Z"),
            NEW: _entry("2026-11-25T12:00:00Z"),
        },
        advisories=(advisory,),
    )
    beta = AppEntry(title="Beta", description="d", category="web", versions={OLD: _entry()})
    proxy = PlatformComponent(version="1", image="i", digest="d", compose="p.yml")
    return Catalog(apps={"web": web, "beta": beta}, platform={"proxy": proxy})


# ---- the views


def test_testing_lists_every_version_and_stable_only_stable_ones() -> None:
    catalog = _catalog()
    assert catalog.channel_view("testing") == catalog
    stable = catalog.channel_view("stable")
    assert list(stable.apps) == ["web"]  # beta has no stable version: left out
    assert list(stable.apps["web"].versions) == [OLD]
    assert stable.platform == catalog.platform and stable.schema == catalog.schema


def test_a_stable_view_names_no_fix_it_hides() -> None:
    stable = _catalog().channel_view("stable")
    [advisory] = stable.apps["web"].advisories
    assert advisory.affected == (OLD,) and advisory.fixed_in == ""  # MID is testing only
    promoted = channels.promote("web", NEW, NOW)(_catalog()).catalog
    [advisory] = promoted.channel_view("stable").apps["web"].advisories
    assert advisory.fixed_in == NEW


def test_revoked_versions_stay_in_their_channel_marked() -> None:
    catalog = channels.revoke("web", OLD, "corrupts data")(_catalog()).catalog
    assert catalog.channel_view("stable").apps["web"].versions[OLD].revoked == "corrupts data"


def test_the_three_catalogue_targets() -> None:
    catalog = _catalog()
    targets = catalogue_targets(catalog)
    assert sorted(targets) == [
        FULL_TARGET,
        channel_target("stable"),
        channel_target("testing"),
    ]
    assert targets[FULL_TARGET] == catalog.to_bytes() == targets["channels/testing/catalog.json"]
    assert Catalog.from_bytes(targets["channels/stable/catalog.json"]) == catalog.channel_view(
        "stable"
    )


def test_first_fix_skips_affected_and_older_versions() -> None:
    assert first_fix([OLD], [OLD, MID, NEW]) == MID
    assert first_fix([OLD, MID], [OLD, MID, NEW]) == NEW
    assert first_fix([NEW], [OLD, MID, NEW]) == ""


# ---- versions and installations from before channels


def test_entries_released_before_channels_read_as_stable() -> None:
    data = json.loads(_catalog().to_bytes())
    for app in data["apps"].values():
        for entry in app["versions"].values():
            del entry["channel"], entry["promoted"]
    catalog = Catalog.from_bytes(json.dumps(data).encode())
    assert {e.channel for a in catalog.apps.values() for e in a.versions.values()} == {"stable"}
    assert {e.promoted for a in catalog.apps.values() for e in a.versions.values()} == {""}
    records = released_records(json.dumps(data).encode(), "old.json")
    assert {(r.channel, r.promoted, r.revoked) for r in records} == {("stable", "", "")}


def test_the_committed_catalogue_reads_as_stable() -> None:
    catalog = Catalog.load(REPO / "catalog.json")
    assert catalog.apps
    assert all(e.channel == "stable" for a in catalog.apps.values() for e in a.versions.values())


def test_a_rebuild_keeps_channel_promotion_and_revocation() -> None:
    catalog = channels.promote("web", MID, NOW)(_catalog()).catalog
    catalog = channels.revoke("web", NEW, "broken")(catalog).catalog
    records = {
        r.version: r for r in released_records(catalog.to_bytes(), "c.json") if r.app == "web"
    }
    assert (records[MID].channel, records[MID].promoted) == ("stable", "2026-11-27T12:00:00Z")
    assert (records[NEW].channel, records[NEW].revoked) == ("testing", "broken")


def test_a_channel_that_does_not_exist_is_refused() -> None:
    data = json.loads(_catalog().to_bytes())
    data["apps"]["web"]["versions"][OLD]["channel"] = "nightly"
    with pytest.raises(
        CatalogError,
        match=r"Invalid enum value 'nightly' - at `\$\.apps\[\.\.\.\]\.versions\[\.\.\.\]"
        r"\.channel`",
    ):
        Catalog.from_bytes(json.dumps(data).encode())
    with pytest.raises(CatalogError, match="channel is 'nightly', not one of stable, testing"):
        released_records(json.dumps(data).encode(), "c.json")


def test_an_installation_configured_before_channels_follows_stable() -> None:
    old = b'{"repository": "http://127.0.0.1:8700", "http_port": 8080}'
    assert msgspec.json.decode(old, type=InstallationConfig).channel == "stable"
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"repository": "r", "channel": "beta"}', type=InstallationConfig)


# ---- promote


def test_promote_moves_a_version_to_stable_and_says_when() -> None:
    edited = channels.promote("web", MID, NOW)(_catalog())
    entry = edited.catalog.apps["web"].versions[MID]
    assert (entry.channel, entry.promoted) == ("stable", "2026-11-27T12:00:00Z")
    assert edited.notes == (f"- **Web** `web` {MID} promoted to stable after 26 days in testing",)
    assert _catalog().apps["web"].versions[MID].channel == "testing"  # the input is untouched


def test_promoting_a_stable_version_changes_nothing() -> None:
    edited = channels.promote("web", OLD, NOW)(_catalog())
    assert edited.notes == () and edited.unchanged == f"web {OLD} is already stable."


@pytest.mark.parametrize(
    ("app", "version", "says", "fix"),
    [
        ("nope", OLD, "catalog.json has no app 'nope' (apps: beta, web)", "name one of the"),
        ("web", "9.9.9+1", f"web has no released version 9.9.9+1 (released: {OLD}, {MID}, {NEW})",
         "name one of its released versions"),
    ],
)  # fmt: skip
def test_an_unknown_app_or_version_is_one_line_with_a_fix(
    app: str, version: str, says: str, fix: str
) -> None:
    for change in (channels.promote(app, version, NOW), channels.revoke(app, version, "x")):
        with pytest.raises(ReleaseError) as refused:
            change(_catalog())
        assert refused.value.what.startswith(says) and refused.value.fix.startswith(fix)
        assert "\n" not in str(refused.value)


def test_a_revoked_version_is_never_promoted() -> None:
    catalog = channels.revoke("web", MID, "leaks tokens")(_catalog()).catalog
    with pytest.raises(ReleaseError, match=r"is revoked \(leaks tokens\); a revoked version"):
        channels.promote("web", MID, NOW)(catalog)


def test_promote_due_promotes_by_age_alone() -> None:
    edited = channels.promote_due(7, NOW)(_catalog())
    assert edited.notes == (
        f"- **Beta** `beta` {OLD} promoted to stable after 26 days in testing",
        f"- **Web** `web` {MID} promoted to stable after 26 days in testing",
    )
    versions = {
        (a, v): e.channel for a, app in edited.catalog.apps.items() for v, e in app.versions.items()
    }
    assert versions == {
        ("beta", OLD): "stable",
        ("web", OLD): "stable",
        ("web", MID): "stable",
        ("web", NEW): "testing",  # two days in testing
    }
    assert channels.promote_due(0, NOW)(_catalog()).catalog.channel_view("stable").apps[
        "web"
    ].versions.keys() == {OLD, MID, NEW}


def test_promote_due_skips_revoked_versions_and_says_what_waits() -> None:
    catalog = channels.revoke("web", MID, "broken")(_catalog()).catalog
    catalog = channels.revoke("beta", OLD, "broken")(catalog).catalog
    edited = channels.promote_due(7, NOW)(catalog)
    assert edited.notes == ()
    assert edited.unchanged == (
        f"No testing version has been in testing for 7 days yet (1 in testing: web {NEW} "
        "(2.0 days))."
    )


def test_negative_days_are_refused() -> None:
    with pytest.raises(ReleaseError, match=r"--days -1 is negative; nothing was published\."):
        channels.promote_due(-1)


def test_a_release_time_that_is_not_iso_is_named() -> None:
    catalog = _catalog()
    web = catalog.apps["web"]
    bad = msgspec.structs.replace(web.versions[MID], released="yesterday")
    catalog.apps = {**catalog.apps, "web": msgspec.structs.replace(web, versions={MID: bad})}
    with pytest.raises(
        ReleaseError, match=f"web {MID.replace('+', '[+]')} has the release time 'yesterday'"
    ):
        channels.promote_due(7, NOW)(catalog)


# ---- revoke


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_a_revocation_needs_a_reason(reason: str) -> None:
    with pytest.raises(ReleaseError) as refused:
        channels.revoke("web", OLD, reason)
    assert "needs a reason" in refused.value.what
    assert (
        refused.value.fix == f'give one: `invoke revoke web {OLD} --reason "data loss on upgrade"`.'
    )


def test_revoke_marks_the_version_and_moves_the_advisory_fix() -> None:
    edited = channels.revoke("web", MID, "  loses\n uploads ")(_catalog())
    web = edited.catalog.apps["web"]
    assert web.versions[MID].revoked == "loses uploads"  # one line
    assert web.advisories[0].fixed_in == NEW  # MID no longer fixes anything
    assert edited.notes == (f"- **Web** `web` {MID} revoked: loses uploads",)
    again = channels.revoke("web", MID, "loses uploads")(edited.catalog)
    assert again.notes == () and again.unchanged == f"web {MID} is already revoked: loses uploads."


# ---- republish, on a real repository in a temporary folder


def _shelf(tmp_path: Path, catalog: Catalog) -> Settings:
    settings = Settings.load(root=tmp_path, env={})
    keys = load_or_create_keys(settings.keys_dir, env={})[0]
    targets = catalogue_targets(catalog)
    Publisher(settings.public_dir, keys).publish(targets)
    settings.catalog_path.write_bytes(targets[FULL_TARGET])
    return settings


def test_republish_signs_the_three_targets_and_records_the_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("COMMONSHELF_KEYS_DIR", "COMMONSHELF_KEY_TARGETS", "COMMONSHELF_KEY_ROOT"):
        monkeypatch.delenv(name, raising=False)
    settings = _shelf(tmp_path, _catalog())
    done = republish(settings, channels.promote("web", MID, NOW))
    assert done.published and done.targets_version == 2 and done.new_keys == []
    record = Catalog.load(settings.catalog_path)
    assert record.apps["web"].versions[MID].channel == "stable" and record.generated
    assert record.commit == "unknown"  # not a git checkout
    published = sorted(
        str(p.parent.relative_to(settings.public_dir))
        for p in settings.public_dir.rglob("*.json")
        if p.name.endswith(".catalog.json")
    )  # two versions of each catalogue target: one before, one after
    assert (
        published
        == ["targets"] * 2 + ["targets/channels/stable"] * 2 + ["targets/channels/testing"] * 2
    )
    releases = settings.releases_path.read_text(encoding="utf-8")
    assert f"— catalogue version 2\n\n- **Web** `web` {MID} promoted to stable" in releases
    nothing = republish(settings, channels.promote("web", MID, NOW))
    assert not nothing.published and "already stable since 2026-11-27T12:00:00Z" in (
        nothing.unchanged
    )
    assert len(list((settings.public_dir / "metadata").glob("*.targets.json"))) == 2


def test_republish_needs_a_published_repository(tmp_path: Path) -> None:
    settings = Settings.load(root=tmp_path, env={})
    with pytest.raises(ReleaseError, match="holds no published repository"):
        republish(settings, channels.promote("web", MID, NOW))
    assert not settings.catalog_path.exists() and not settings.releases_path.exists()
