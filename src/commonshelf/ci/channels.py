"""What each channel offers: promotion from testing to stable, and revocation.

A released version lands in `testing`; `promote` moves it to `stable` by hand, `promote_due`
by age (N days in testing: failures installations report are not collected yet, so age is
the whole rule); `revoke` withdraws a version with a reason installations show. Each returns a
change for `republish.republish`, which signs and publishes the result: nothing is rebuilt,
only what the catalogue says about released versions changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import semver

from commonshelf.catalogue.catalog import Catalog, first_fix
from commonshelf.catalogue.contract import AppEntry, VersionEntry
from commonshelf.platform.errors import ReleaseError

DEFAULT_DAYS = 7
_ISO = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Edited:
    """A changed catalogue and the RELEASES.md lines that say what changed (none: nothing did,
    and `unchanged` says why)."""

    catalog: Catalog
    notes: tuple[str, ...] = ()
    unchanged: str = ""


Change = Callable[[Catalog], Edited]


def _released(catalog: Catalog, app: str, version: str) -> tuple[AppEntry, VersionEntry]:
    """The app and the version named on the command line, or one line naming what exists."""
    entry = catalog.apps.get(app)
    if entry is None:
        known = ", ".join(sorted(catalog.apps)) or "none"
        raise ReleaseError(
            f"catalog.json has no app '{app}' (apps: {known}); nothing was published.",
            "name one of the released apps.",
        )
    if version not in entry.versions:
        listed = ", ".join(sorted(entry.versions, key=semver.Version.parse)) or "none"
        raise ReleaseError(
            f"{app} has no released version {version} (released: {listed}); nothing was published.",
            "name one of its released versions.",
        )
    return entry, entry.versions[version]


def _with(catalog: Catalog, app: str, version: str, entry: VersionEntry) -> Catalog:
    current = catalog.apps[app]
    versions = {**current.versions, version: entry}
    updated = msgspec.structs.replace(current, versions=versions)
    return msgspec.structs.replace(catalog, apps={**catalog.apps, app: updated})


def _days_in_testing(app: str, version: str, entry: VersionEntry, now: datetime) -> float:
    try:
        released = datetime.strptime(entry.released, _ISO).replace(tzinfo=UTC)
    except ValueError:
        raise ReleaseError(
            f"catalog.json: {app} {version} has the release time {entry.released!r}, not "
            "YYYY-MM-DDTHH:MM:SSZ.",
            "restore catalog.json from git.",
        ) from None
    return (now - released) / timedelta(days=1)


def _promoted(
    app: str, version: str, entry: VersionEntry, title: str, now: datetime
) -> tuple[VersionEntry, str]:
    days = _days_in_testing(app, version, entry, now)
    stable = msgspec.structs.replace(entry, channel="stable", promoted=now.strftime(_ISO))
    note = f"- **{title}** `{app}` {version} promoted to stable after {days:.0f} days in testing"
    return stable, note


def promote(app: str, version: str, now: datetime | None = None) -> Change:
    """Move one version to stable."""

    def change(catalog: Catalog) -> Edited:
        listing, entry = _released(catalog, app, version)
        if entry.revoked:
            raise ReleaseError(
                f"{app} {version} is revoked ({entry.revoked}); a revoked version is never "
                "promoted, nothing was published.",
                "release a fixed version (it lands in testing) and promote that one.",
            )
        if entry.channel == "stable":
            since = f" since {entry.promoted}" if entry.promoted else ""
            return Edited(catalog, unchanged=f"{app} {version} is already stable{since}.")
        stable, note = _promoted(app, version, entry, listing.title, now or datetime.now(UTC))
        return Edited(_with(catalog, app, version, stable), (note,))

    return change


def promote_due(days: int = DEFAULT_DAYS, now: datetime | None = None) -> Change:
    """Move to stable every testing version released at least `days` days ago (not revoked)."""
    if days < 0:
        raise ReleaseError(
            f"--days {days} is negative; nothing was published.",
            f"give the days a version stays in testing, e.g. --days {DEFAULT_DAYS}.",
        )

    def change(catalog: Catalog) -> Edited:
        moment = now or datetime.now(UTC)
        notes: list[str] = []
        waiting: list[str] = []
        for app, listing in sorted(catalog.apps.items()):
            for version in sorted(listing.versions, key=semver.Version.parse):
                entry = listing.versions[version]
                if entry.channel != "testing" or entry.revoked:
                    continue
                age = _days_in_testing(app, version, entry, moment)
                if age < days:
                    waiting.append(f"{app} {version} ({age:.1f} days)")
                    continue
                stable, note = _promoted(app, version, entry, listing.title, moment)
                catalog = _with(catalog, app, version, stable)
                notes.append(note)
        if notes:
            return Edited(catalog, tuple(notes))
        held = f": {', '.join(waiting)}" if waiting else ""
        return Edited(
            catalog,
            unchanged=f"No testing version has been in testing for {days} days yet "
            f"({len(waiting)} in testing{held}).",
        )

    return change


def revoke(app: str, version: str, reason: str) -> Change:
    """Withdraw a version: installations never install it, and those running it move away.
    An advisory that named it as the fix names the next version that fixes it instead."""
    why = " ".join(reason.split())  # one line: installations print it in a sentence
    if not why:
        raise ReleaseError(
            "A revocation needs a reason (installations show it to their operators); nothing "
            "was published.",
            f'give one: `invoke revoke {app} {version} --reason "data loss on upgrade"`.',
        )

    def change(catalog: Catalog) -> Edited:
        listing, entry = _released(catalog, app, version)
        if entry.revoked == why:
            return Edited(catalog, unchanged=f"{app} {version} is already revoked: {why}.")
        revoked = msgspec.structs.replace(entry, revoked=why)
        changed = _with(catalog, app, version, revoked)
        updated = changed.apps[app]
        allowed = [v for v, e in updated.versions.items() if not e.revoked]
        advisories = tuple(
            msgspec.structs.replace(a, fixed_in=first_fix(a.affected, allowed))
            if a.fixed_in == version
            else a
            for a in updated.advisories
        )
        updated = msgspec.structs.replace(updated, advisories=advisories)
        changed = msgspec.structs.replace(changed, apps={**changed.apps, app: updated})
        verb = "revocation reason changed" if entry.revoked else "revoked"
        note = f"- **{listing.title}** `{app}` {version} {verb}: {why}"
        return Edited(changed, (note,))

    return change
