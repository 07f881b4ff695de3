"""Which version an unattended installation moves to: patch and minor by default, majors and
manual migrations held for the operator, never a revoked, low-level or locally failed one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from commonshelf.catalogue.contract import (
    VersionEntry,
)
from commonshelf.installation.policy import (
    AppPolicy,
    Decision,
    check_window,
    decide,
    in_window,
)
from commonshelf.platform.errors import DeployError

from ..entries import version_entry

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _entry(level: int = 7, revoked: str = "", manual: bool = False) -> VersionEntry:
    return version_entry(level=level, revoked=revoked, manual=manual)


DEFAULT = AppPolicy()


def _decide(
    versions: dict[str, VersionEntry],
    policy: AppPolicy = DEFAULT,
    *,
    automatic: bool = True,
    now: datetime = NOON,
) -> Decision:
    return decide("1.1.0+2", versions, policy, min_level=7, now=now, automatic=automatic)


def test_patch_and_minor_apply_by_default_and_the_newest_wins() -> None:
    decision = _decide({"1.1.1+2": _entry(), "1.2.0+3": _entry(), "1.0.0+1": _entry()})
    assert decision.target == "1.2.0+3"
    assert decision.held == {}


def test_majors_and_manual_migrations_wait_for_the_operator() -> None:
    decision = _decide({"2.0.0+9": _entry(), "1.2.0+3": _entry(manual=True)})
    assert decision.target is None
    assert "major version" in decision.held["2.0.0+9"]
    assert "--to 2.0.0+9" in decision.held["2.0.0+9"]
    assert "manual migration (export first)" in decision.held["1.2.0+3"]
    # an operator's plain `update` holds them too
    assert _decide({"2.0.0+9": _entry()}, automatic=False).target is None


def test_revoked_low_level_and_failed_versions_are_never_chosen() -> None:
    policy = AppPolicy(bad={"1.1.3+2": "health check failed"})
    decision = _decide(
        {
            "1.1.1+2": _entry(revoked="leaks the admin password"),
            "1.1.2+2": _entry(level=5),
            "1.1.3+2": _entry(),
        },
        policy,
    )
    assert decision.target is None
    assert "revoked" in decision.held["1.1.1+2"]
    assert "level 5" in decision.held["1.1.2+2"]
    assert "failed here before" in decision.held["1.1.3+2"]
    # a good older patch is still applied past a failed newer one
    assert _decide({"1.1.2+2": _entry(), "1.1.3+2": _entry()}, policy).target == "1.1.2+2"


def test_policy_auto_and_window_hold_only_unattended_updates() -> None:
    versions = {"1.1.1+2": _entry(), "1.2.0+2": _entry()}
    assert _decide(versions, AppPolicy(auto="patch")).target == "1.1.1+2"
    assert _decide(versions, AppPolicy(auto="none")).target is None
    closed = AppPolicy(window="02:00-05:00")
    assert _decide(versions, closed).target is None
    assert "maintenance window" in _decide(versions, closed).held["1.2.0+2"]
    assert _decide(versions, closed, automatic=False).target == "1.2.0+2"
    night = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)
    assert _decide(versions, closed, now=night).target == "1.2.0+2"


def test_windows_may_wrap_past_midnight_and_are_validated() -> None:
    assert in_window("22:00-04:00", datetime(2026, 1, 1, 23, 0, tzinfo=UTC))
    assert in_window("22:00-04:00", datetime(2026, 1, 1, 3, 59, tzinfo=UTC))
    assert not in_window("22:00-04:00", datetime(2026, 1, 1, 4, 0, tzinfo=UTC))
    assert in_window("", NOON)
    assert check_window("02:00-05:00") == "02:00-05:00"
    for bad in ("2-5", "25:00-01:00", "02:00"):
        with pytest.raises(DeployError, match="HH:MM-HH:MM"):
            check_window(bad)


def test_a_revoked_running_version_moves_on_despite_the_window_and_auto() -> None:
    closed = AppPolicy(auto="patch", window="02:00-03:00")  # noon: outside the window
    versions = {"1.1.0+2": _entry(revoked="leaks the admin token"), "1.2.0+3": _entry()}
    held = _decide({"1.1.0+2": _entry(), "1.2.0+3": _entry()}, closed)
    assert held.target is None  # a minor version outside the window: held as usual
    moved = _decide(versions, closed)
    assert moved.target == "1.2.0+3"
    assert moved.why == "1.1.0+2 was revoked by the publisher (leaks the admin token)"


def test_a_revoked_running_version_never_moves_to_a_major_or_bad_version_by_itself() -> None:
    versions = {
        "1.1.0+2": _entry(revoked="broken"),
        "2.0.0+3": _entry(),
        "1.1.1+2": _entry(level=3),
    }
    decision = _decide(versions)
    assert decision.target is None
    assert "major" in decision.held["2.0.0+3"] and "level 3" in decision.held["1.1.1+2"]
