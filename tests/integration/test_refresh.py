"""Issue 13, "Done means" 2: with `refresh` run daily (simulated clock), installations keep
working past the first timestamp's expiry; without it they refuse with an "expired" message.

One clock drives both sides: the publisher's (`Publisher(clock=…)`, what `invoke refresh`
runs) and the installation's, which is python-tuf's reference time
(`datetime.now` in tuf.ngclient._internal.trusted_metadata_set, as the fault suite's
clock-ahead case moves it) and the agent's own (`platform.clock`, named in the error). The
repository has real threshold keys and signatures and is served over HTTP on loopback;
the installation is the TUF client `commonshelf init` makes, pinned to 1.root.json.
"""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Snapshot, Timestamp
from tuf.ngclient._internal import trusted_metadata_set

from commonshelf.catalogue.expiry import Expiry
from commonshelf.catalogue.rotation import init_keys
from commonshelf.catalogue.server import serving
from commonshelf.catalogue.signing import Publisher, load_keys
from commonshelf.installation.subscription import Subscription
from commonshelf.platform import clock as agent_clock
from commonshelf.platform.errors import TrustError

CATALOG = "catalog.json"


class World:
    """The simulated time of the publisher and the installation."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    world = World()

    class Simulated(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Simulated:
            return cls.fromtimestamp(world.now.timestamp(), tz)

    monkeypatch.setattr(
        trusted_metadata_set, "datetime", types.SimpleNamespace(datetime=Simulated, timezone=UTC)
    )
    monkeypatch.setattr(agent_clock, "datetime", Simulated)
    return world


def _role(public: Path, name: str) -> Metadata:  # type: ignore[type-arg]
    return Metadata.from_file(str(public / "metadata" / name))


def test_a_daily_refresh_keeps_installations_working_and_none_lets_them_expire(
    world: World, tmp_path: Path
) -> None:
    public, keys = tmp_path / "public", tmp_path / "keys"
    start = world.now
    init_keys(public, keys, env={}, expiry=Expiry(), clock=world)
    ci = {"COMMONSHELF_OFFLINE_KEYS_DIR": str(tmp_path)}  # the scheduled job holds no root key

    def publisher() -> Publisher:
        return Publisher(public, load_keys(keys, ci), expiry=Expiry(), clock=world)

    publisher().publish({CATALOG: b'{"release": 1}'})
    home = tmp_path / "home" / "tuf"
    home.parent.mkdir()
    world.now = start + timedelta(hours=1)
    with serving(public) as url:
        Subscription.create(home, url, (public / "metadata/1.root.json").read_bytes(), verify=True)
        first = _role(public, "timestamp.json").signed.expires
        assert first == start + timedelta(days=1)

        # no refresh: an hour past the first timestamp's expiry, the installation refuses
        world.now = first + timedelta(hours=1)
        held = (home / "metadata" / "timestamp.json").read_bytes()
        with pytest.raises(TrustError, match=r"has expired \(timestamp\.json: it expired at") as no:
            Subscription.open(home).refresh()
        assert f"this machine's clock says {world.now:%Y-%m-%dT%H:%M:%SZ}" in str(no.value)
        assert (home / "metadata" / "timestamp.json").read_bytes() == held  # trust unchanged

        # the scheduled refresh: once a day for ten days, past the snapshot's week too; the
        # installation polls just after each run and just before the next
        snapshots = set()
        for day in range(1, 11):
            run = first + timedelta(days=day - 1, hours=1)  # the schedule: daily at this time
            if day == 5:
                # a release two hours before the run: alone, by the half-life rule, its
                # timestamp would lapse two hours before the next run
                world.now = run - timedelta(hours=2)
                publisher().publish({CATALOG: b'{"release": 2}'})
            world.now = run
            written = publisher().refresh().written
            assert "metadata/timestamp.json" in written
            for later in (timedelta(minutes=1), timedelta(hours=23, minutes=59)):
                world.now = run + later
                subscription = Subscription.open(home)
                subscription.refresh()
                expected = b'{"release": 2}' if day >= 5 else b'{"release": 1}'
                assert subscription.fetch(CATALOG) == expected
            snapshots.add(_role(public, "timestamp.json").signed.snapshot_meta.version)

        timestamp: Metadata[Timestamp] = _role(public, "timestamp.json")
        snapshot: Metadata[Snapshot] = _role(
            public, f"{timestamp.signed.snapshot_meta.version}.snapshot.json"
        )
        assert timestamp.signed.version == 12  # one per release (2) and per refresh (10)
        # release 1, due (half its week gone) on day 4, release 2 on day 5, due on day 9
        assert sorted(snapshots) == [1, 2, 3, 4]
        assert snapshot.signed.expires > world.now > start + timedelta(days=7)

        # the refresh stops: a day later the installation refuses again, and names why
        world.now += timedelta(days=1, hours=1)
        with pytest.raises(TrustError, match="expired"):
            Subscription.open(home).refresh()
