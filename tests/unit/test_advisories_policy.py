"""Advisories steer the update policy: a version that fixes them wins over a newer one that
still carries them, a critical one overrides the maintenance window (and nothing else), and
an update never brings in a severe advisory the running version does not carry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from commonshelf.catalogue.contract import (
    Advisory,
    AppEntry,
    VersionEntry,
)
from commonshelf.installation import journal, updates
from commonshelf.installation.advisories import exposure, summary
from commonshelf.installation.policy import AppPolicy, Decision, decide

from ..entries import version_entry

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CLOSED = AppPolicy(window="02:00-05:00")  # noon is outside it
RUNNING = "1.1.0+2"
DEFAULT = AppPolicy()


def _entry(level: int = 7, revoked: str = "", manual: bool = False) -> VersionEntry:
    return version_entry(level=level, revoked=revoked, manual=manual)


def _advisory(id: str, severity: str, affected: tuple[str, ...], fixed_in: str = "") -> Advisory:
    return Advisory(
        id=id,
        severity=severity,
        package="openssl",
        affected=affected,
        fixed_in=fixed_in,
        package_fixed="3.0.11-1",
        title="a hole in TLS",
        found="2026-11-20T00:00:00Z",
    )


CRITICAL = _advisory("CVE-2099-0001", "CRITICAL", (RUNNING,), fixed_in="1.1.1+2")
HIGH = _advisory("CVE-2099-0002", "HIGH", (RUNNING,), fixed_in="1.1.1+2")


def _decide(
    versions: dict[str, VersionEntry],
    advisories: tuple[Advisory, ...],
    policy: AppPolicy = DEFAULT,
    *,
    automatic: bool = True,
) -> Decision:
    return decide(
        RUNNING,
        versions,
        policy,
        min_level=7,
        now=NOON,
        automatic=automatic,
        app="web",
        advisories=advisories,
    )


def test_a_critical_advisory_lets_a_fix_go_ahead_outside_the_window() -> None:
    versions = {"1.1.1+2": _entry(), "1.2.0+2": _entry()}
    decision = _decide(versions, (CRITICAL,), CLOSED)
    assert decision.target == "1.2.0+2"  # fixes it too, and is the newest
    assert decision.why == (
        "CVE-2099-0001 (critical) is fixed in 1.2.0+2, so it goes ahead outside the "
        "maintenance window 02:00-05:00 (UTC)"
    )
    assert "CVE-2099-0001 (critical) is fixed in 1.2.0+2" in decision.sentence("web", RUNNING)
    # a HIGH one waits for the window, as does everything without an advisory
    held = _decide(versions, (HIGH,), CLOSED)
    assert held.target is None and "maintenance window" in held.held["1.2.0+2"]
    assert _decide(versions, (), CLOSED).target is None
    # inside the window it is an ordinary update that says what it fixes
    night = decide(
        RUNNING,
        versions,
        CLOSED,
        min_level=7,
        now=datetime(2026, 11, 27, 3, 0, tzinfo=UTC),
        automatic=True,
        app="web",
        advisories=(CRITICAL,),
    )
    assert night.target == "1.2.0+2"
    assert night.why == "CVE-2099-0001 (critical) is fixed in 1.2.0+2"


def test_outside_the_window_only_a_version_that_fixes_the_critical_one_goes_ahead() -> None:
    still = _advisory("CVE-2099-0001", "CRITICAL", (RUNNING, "1.2.0+2"), fixed_in="")
    decision = _decide({"1.2.0+2": _entry()}, (still,), CLOSED)
    assert decision.target is None
    assert "maintenance window" in decision.held["1.2.0+2"]


@pytest.mark.parametrize(
    ("versions", "policy", "reason"),
    [
        ({"2.0.0+1": _entry()}, CLOSED, "major version"),
        ({"1.1.1+2": _entry(manual=True)}, CLOSED, "manual migration"),
        ({"1.1.1+2": _entry(level=5)}, CLOSED, "level 5"),
        ({"1.1.1+2": _entry(revoked="broken")}, CLOSED, "revoked"),
        ({"1.1.1+2": _entry()}, AppPolicy(window="02:00-05:00", bad={"1.1.1+2": "x"}), "failed"),
        ({"1.1.1+2": _entry()}, AppPolicy(window="02:00-05:00", auto="none"), "automatic"),
        ({"1.2.0+2": _entry()}, AppPolicy(window="02:00-05:00", auto="patch"), "patches only"),
    ],
)
def test_a_critical_advisory_overrides_nothing_but_the_window(
    versions: dict[str, VersionEntry], policy: AppPolicy, reason: str
) -> None:
    critical = _advisory("CVE-2099-0001", "CRITICAL", (RUNNING,), fixed_in=next(iter(versions)))
    decision = _decide(versions, (critical,), policy)
    assert decision.target is None
    [(_, held)] = decision.held.items()
    assert reason in held


def test_a_fixing_version_wins_over_a_newer_one_that_still_carries_it() -> None:
    carried = _advisory("CVE-2099-0002", "HIGH", (RUNNING, "1.2.0+2"), fixed_in="")
    versions = {"1.1.1+2": _entry(), "1.2.0+2": _entry()}
    for automatic in (True, False):
        decision = _decide(versions, (carried,), automatic=automatic)
        assert decision.target == "1.1.1+2"
        assert decision.why == "CVE-2099-0002 (high) is fixed in 1.1.1+2"
        assert decision.held == {
            "1.2.0+2": "still carries CVE-2099-0002 (high), which 1.1.1+2 fixes"
        }


def test_without_a_fix_the_choice_is_unchanged() -> None:
    nowhere = _advisory("CVE-2099-0003", "CRITICAL", (RUNNING, "1.1.1+2", "1.2.0+2"))
    versions = {"1.1.1+2": _entry(), "1.2.0+2": _entry()}
    with_it = _decide(versions, (nowhere,))
    assert with_it == _decide(versions, ()) == Decision(target="1.2.0+2", held={}, why="")
    # and an advisory on another version only changes nothing either
    other = _advisory("CVE-2099-0004", "LOW", ("1.0.0+1",))
    assert _decide(versions, (other,)).target == "1.2.0+2"


def test_the_most_severe_advisory_is_fixed_first() -> None:
    low = _advisory("CVE-2099-0005", "LOW", (RUNNING, "1.1.1+2"))
    critical = _advisory("CVE-2099-0001", "CRITICAL", (RUNNING, "1.2.0+2"))
    decision = _decide({"1.1.1+2": _entry(), "1.2.0+2": _entry()}, (low, critical))
    assert decision.target == "1.1.1+2"  # fixes the critical one, keeps the low one
    assert decision.why == "CVE-2099-0001 (critical) is fixed in 1.1.1+2"


def test_an_update_does_not_bring_in_a_severe_advisory() -> None:
    """After moving to the version that fixed it, the next run does not move on to a newer
    version that carries it again; the operator can, with --to."""
    back = _advisory("CVE-2099-0002", "HIGH", ("1.1.0+2", "1.2.0+2"))
    decision = decide(
        "1.1.1+2",
        {"1.1.0+2": _entry(), "1.1.1+2": _entry(), "1.2.0+2": _entry()},
        AppPolicy(),
        min_level=7,
        now=NOON,
        automatic=True,
        app="web",
        advisories=(back,),
    )
    assert decision.target is None
    assert decision.held["1.2.0+2"] == (
        "carries CVE-2099-0002 (high), which 1.1.1+2 does not: run "
        "`commonshelf update web --to 1.2.0+2` to apply it anyway"
    )
    # a medium or low one does not hold an update; fixing one as severe lets it through
    medium = _advisory("CVE-2099-0006", "MEDIUM", ("1.2.0+2",))
    assert _decide({"1.2.0+2": _entry()}, (medium,)).target == "1.2.0+2"
    trade = _advisory("CVE-2099-0007", "HIGH", ("1.2.0+2",))
    assert _decide({"1.2.0+2": _entry()}, (CRITICAL, trade)).target == "1.2.0+2"


def _app(versions: dict[str, VersionEntry], *advisories: Advisory) -> AppEntry:
    return AppEntry(
        title="Web", description="d", category="c", versions=versions, advisories=advisories
    )


def test_a_fix_in_a_major_version_is_not_applied_and_the_command_is_named() -> None:
    critical = _advisory("CVE-2099-0001", "CRITICAL", (RUNNING, "1.1.1+2"), fixed_in="2.0.0+1")
    versions = {RUNNING: _entry(), "1.1.1+2": _entry(), "2.0.0+1": _entry()}
    decision = _decide(versions, (critical,))
    assert decision.target == "1.1.1+2"  # the newest minor, which still carries it
    assert decision.why == ""
    shown = exposure("web", RUNNING, _app(versions, critical), CLOSED, min_level=7, now=NOON)
    assert shown.worst == "CRITICAL" and shown.short() == "1 (critical)"
    [view] = shown.advisories
    assert view.summary == "CVE-2099-0001 (critical, openssl 3.0.11-1 → fixed in web 2.0.0+1)"
    assert view.command == "commonshelf update web --to 2.0.0+1"
    assert view.action == (
        "2.0.0+1 fixes it but is a major version: run `commonshelf update web --to 2.0.0+1`."
    )


def test_what_to_do_follows_what_the_policy_would_do() -> None:
    versions = {RUNNING: _entry(), "1.1.1+2": _entry()}
    app = _app(versions, HIGH)
    # applied by the next run
    [view] = exposure("web", RUNNING, app, AppPolicy(), min_level=7, now=NOON).advisories
    assert view.action == "the next unattended run moves web to 1.1.1+2, which fixes it."
    assert view.command == ""
    # held by the window: the operator may apply it now
    [view] = exposure("web", RUNNING, app, CLOSED, min_level=7, now=NOON).advisories
    assert view.command == "commonshelf update web"
    assert "maintenance window 02:00-05:00" in view.action
    # a manual migration: the exact command
    manual = {RUNNING: _entry(), "1.1.1+2": _entry(manual=True)}
    [view] = exposure(
        "web", RUNNING, _app(manual, HIGH), AppPolicy(), min_level=7, now=NOON
    ).advisories
    assert view.command == "commonshelf update web --to 1.1.1+2"
    assert "manual migration (export first)" in view.action
    # the only fix is revoked: nothing to run
    revoked = {RUNNING: _entry(), "1.1.1+2": _entry(revoked="broken")}
    [view] = exposure(
        "web", RUNNING, _app(revoked, HIGH), AppPolicy(), min_level=7, now=NOON
    ).advisories
    assert view.command == "" and "revoked" in view.action
    # no fix released yet
    open_ = _advisory("CVE-2099-0008", "MEDIUM", (RUNNING, "1.1.1+2"))
    [view] = exposure(
        "web", RUNNING, _app(versions, open_), AppPolicy(), min_level=7, now=NOON
    ).advisories
    assert view.summary == "CVE-2099-0008 (medium, openssl 3.0.11-1 → no fixed release yet)"
    assert view.action.startswith("no released version of web fixes it yet (openssl 3.0.11-1")
    # a version no advisory names is not exposed
    assert (
        exposure("web", "1.1.1+2", _app(versions, HIGH), AppPolicy(), min_level=7, now=NOON).short()
        == "none"
    )


def test_the_summary_without_a_package_fix() -> None:
    bare = Advisory(id="CVE-1", severity="HIGH", package="zlib", affected=("1.0.0+1",))
    assert summary("web", bare) == "CVE-1 (high, zlib → no fixed release yet)"


def test_the_history_says_why_a_fixing_update_went_ahead(tmp_path: Path) -> None:
    """The reason travels with the pending update (a resumed run says it too) into the event;
    a pending record written before the field existed still reads."""
    decision = _decide({"1.1.1+2": _entry()}, (CRITICAL,), CLOSED)

    class _Agent:
        home = tmp_path

        def note(self, event: journal.Event) -> journal.Event:
            return journal.record(tmp_path, event)

    left = updates.Pending(
        app="web",
        from_version=RUNNING,
        to_version="1.1.1+2",
        started="2026-11-27T12:00:00Z",
        reason=decision.why,
    )
    event = updates._updated(_Agent(), left, "2026-11-27T12:01:00Z")  # type: ignore[arg-type]
    assert event.sentence == (
        "Updated web from 1.1.0+2 to 1.1.1+2 on 2026-11-27T12:01:00Z; CVE-2099-0001 (critical) "
        "is fixed in 1.1.1+2, so it goes ahead outside the maintenance window 02:00-05:00 (UTC)."
    )
    old = tmp_path / "pending" / "web.json"
    old.parent.mkdir()
    old.write_text(
        '{"app": "web", "from_version": "1.1.0+2", "to_version": "1.1.1+2", "backup": "", '
        '"started": "2026-11-27T12:00:00Z"}'
    )
    assert updates.pending(tmp_path)[0].reason == ""
