"""Which published version an app should move to, by its update policy.

Defaults follow what a non-sysadmin expects of an appliance: patch and minor versions of
a recipe are applied automatically; a major version, or one whose release says it needs a
manual migration, waits until the operator asks for it (`update APP --to V`). A version
under the installation's minimum level, revoked by the publisher, or that failed here
before (marked bad locally) is never chosen. An optional maintenance window holds
automatic updates outside it.

Advisories (found by a rescan after release) steer the choice among the versions those
rules allow: when the running version carries some, the newest version that fixes the most
severe of them wins over a newer one that still carries them, and a CRITICAL one lets a
fixing version go ahead outside the maintenance window (never past the other rules). An
update does not bring in a CRITICAL or HIGH advisory the running version does not carry
unless it fixes one as severe: the operator decides that with `update APP --to V`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time
from pathlib import Path
from typing import Literal

import msgspec
import semver

from commonshelf.catalogue.contract import Advisory, VersionEntry
from commonshelf.installation.state import read_record, write_record
from commonshelf.platform.errors import DeployError

Auto = Literal["patch", "minor", "none"]
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class AppPolicy(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An app's update policy and what this installation learnt about its versions."""

    auto: Auto = "minor"  # the largest kind of change applied without asking
    window: str = ""  # HH:MM-HH:MM (UTC; may wrap past midnight); "" = any time
    bad: dict[str, str] = {}  # version -> why it failed here (never retried automatically)


def policy_path(home: Path, app: str) -> Path:
    return home / "policy" / f"{app}.json"


def load_policy(home: Path, app: str) -> AppPolicy:
    path = policy_path(home, app)
    return read_record(path, AppPolicy) if path.exists() else AppPolicy()


def save_policy(home: Path, app: str, policy: AppPolicy) -> None:
    write_record(policy_path(home, app), policy)


def mark_bad(home: Path, app: str, version: str, why: str) -> None:
    """Remember that `version` failed here, so policy never applies it again by itself."""
    policy = load_policy(home, app)
    save_policy(home, app, msgspec.structs.replace(policy, bad={**policy.bad, version: why}))


def check_window(text: str) -> str:
    """A maintenance window as given by the operator, or a DeployError saying the format."""
    if text and not _WINDOW.match(text):
        raise DeployError(
            f"--window {text!r} is not HH:MM-HH:MM.",
            "write e.g. --window 02:00-05:00 (UTC), or --window '' for any time.",
        )
    return text


def in_window(window: str, now: datetime) -> bool:
    """Whether `now` (UTC) falls in the window; a window may wrap past midnight."""
    if not window:
        return True
    start_text, _, end_text = window.partition("-")
    start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
    moment = now.time().replace(second=0, microsecond=0, tzinfo=None)
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end


def change_kind(current: str, candidate: str) -> Literal["major", "minor", "patch"]:
    """How far the recipe's own version moves (the upstream part after `+` is not judged)."""
    old, new = semver.Version.parse(current), semver.Version.parse(candidate)
    if new.major != old.major:
        return "major"
    if new.minor != old.minor:
        return "minor"
    return "patch"


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The version to move to (None: stay), and why each newer version is held."""

    target: str | None
    held: dict[str, str] = {}  # version -> the reason it is not applied now
    why: str = ""  # the advisories the target fixes (and a window it overrides), if any

    def sentence(self, app: str, current: str) -> str:
        if self.target:
            return f"{app} {current} → {self.target}" + (f" ({self.why})" if self.why else "")
        if not self.held:
            return f"{app} {current} is up to date"
        newest = max(self.held, key=semver.Version.parse)
        return f"{app} stays at {current}: {newest} {self.held[newest]}"


def decide(
    current: str,
    versions: dict[str, VersionEntry],
    policy: AppPolicy,
    *,
    min_level: int,
    now: datetime,
    automatic: bool,
    app: str = "APP",  # named in the reasons' commands
    advisories: Sequence[Advisory] = (),  # the app's (`AppEntry.advisories`)
) -> Decision:
    """The newest version newer than `current` that policy allows, steered by advisories.

    `automatic` is the unattended `run`: it honours `auto` and the window. An operator's
    `update APP` applies the same rules but ignores the window and `auto` (minor and patch
    versions go ahead); majors and manual migrations always wait for `--to`.
    """
    base = semver.Version.parse(current)
    held: dict[str, str] = {}
    allowed: list[str] = []
    windowed: list[str] = []  # held by the maintenance window alone
    running = versions.get(current)
    withdrawn = running.revoked if running is not None else ""
    if withdrawn:  # the publisher withdrew it: neither the window nor `auto` holds a move
        automatic = False
    for version, entry in versions.items():
        if semver.Version.parse(version).compare(base) <= 0:
            continue
        reason = blocked(version, entry, policy, min_level)
        kind = change_kind(current, version)
        if reason is None and kind == "major":
            reason = f"is a major version: run `commonshelf update {app} --to {version}`"
        if reason is None and entry.runtime.migration.kind == "manual":
            note = f" ({entry.runtime.migration.note})" if entry.runtime.migration.note else ""
            reason = (
                f"needs a manual migration{note}: run `commonshelf update {app} --to {version}`"
            )
        if reason is None and automatic:
            if policy.auto == "none":
                reason = f"waits: automatic updates are off (`commonshelf policy {app} --auto`)"
            elif policy.auto == "patch" and kind == "minor":
                reason = "is a minor version and the policy applies patches only"
            elif not in_window(policy.window, now):
                reason = f"waits for the maintenance window {policy.window} (UTC)"
                windowed.append(version)
        if reason is None:
            allowed.append(version)
        else:
            held[version] = reason
    exposure = [a for a in advisories if current in a.affected]
    critical = [a for a in exposure if a.severity.upper() == "CRITICAL"]
    urgent = [v for v in windowed if not carried(v, critical)] if critical else []
    for version in urgent:  # a critical fix does not wait for the window
        del held[version]
        allowed.append(version)
    for version in list(allowed):
        reason = _regression(current, version, advisories, app)
        if reason:
            allowed.remove(version)
            held[version] = reason
    if not allowed:
        return Decision(target=None, held=held)
    target = max(allowed, key=lambda v: _preference(v, exposure))
    if withdrawn:
        return Decision(
            target=target, held=held, why=f"{current} was revoked by the publisher ({withdrawn})"
        )
    fixed = [a for a in exposure if target not in a.affected]
    for version in allowed:  # newer, but carries what the target fixes
        still = [a for a in carried(version, exposure) if a in fixed]
        if semver.Version.parse(version).compare(target) > 0 and still:
            held[version] = f"still carries {_names(still)}, which {target} fixes"
    why = ""
    if fixed:
        why = f"{_names(fixed)} {'is' if len(fixed) == 1 else 'are'} fixed in {target}"
    if target in urgent:
        why += f", so it goes ahead outside the maintenance window {policy.window} (UTC)"
    return Decision(target=target, held=held, why=why)


SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")


def severity_rank(severity: str) -> int:
    """0 for CRITICAL … 4 for UNKNOWN; anything else ranks below them all."""
    upper = severity.upper()
    return SEVERITIES.index(upper) if upper in SEVERITIES else len(SEVERITIES)


def carried(version: str, advisories: Sequence[Advisory]) -> list[Advisory]:
    """The advisories among `advisories` that name `version` as affected."""
    return [a for a in advisories if version in a.affected]


def _names(advisories: Sequence[Advisory]) -> str:
    ordered = sorted(advisories, key=lambda a: (severity_rank(a.severity), a.id))
    return ", ".join(f"{a.id} ({a.severity.lower()})" for a in ordered)


def _worst(advisories: Sequence[Advisory]) -> int:
    return min((severity_rank(a.severity) for a in advisories), default=len(SEVERITIES) + 1)


def _preference(version: str, exposure: Sequence[Advisory]) -> tuple[int, int, semver.Version]:
    """Larger is better: what still affects it is least severe, then fewest, then newest."""
    still = carried(version, exposure)
    return (_worst(still), -len(still), semver.Version.parse(version))


def _regression(current: str, version: str, advisories: Sequence[Advisory], app: str) -> str | None:
    """Why `version` would make the app less safe (None: it does not): it brings a CRITICAL
    or HIGH advisory the running version does not carry, and fixes none as severe."""
    brought = [a for a in carried(version, advisories) if current not in a.affected]
    if _worst(brought) > SEVERITIES.index("HIGH"):
        return None
    cured = [a for a in advisories if current in a.affected and version not in a.affected]
    if _worst(cured) <= _worst(brought):
        return None
    return (
        f"carries {_names(brought)}, which {current} does not: run "
        f"`commonshelf update {app} --to {version}` to apply it anyway"
    )


def blocked(version: str, entry: VersionEntry, policy: AppPolicy, min_level: int) -> str | None:
    """Why a version may never be installed here, even when asked for (None: it may)."""
    if entry.revoked:
        return f"was revoked by the publisher ({entry.revoked})"
    if entry.vetting.level < min_level:
        return f"is at level {entry.vetting.level}, under this installation's minimum {min_level}"
    if version in policy.bad:
        return f"failed here before ({policy.bad[version]})"
    return None
