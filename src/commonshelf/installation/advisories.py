"""What the advisories a rescan published mean for this installation, app by app.

`invoke rescan` marks released versions that became vulnerable after their release
(`AppEntry.advisories`). An operator needs three answers for the version an app runs here:
is it affected, how badly, and what fixes it: the next unattended run, a plain `update`,
or an explicit `update APP --to V` (a major version or a manual migration, which policy
never applies by itself). The answer comes from the same `policy.decide` the agent acts on,
so what `status` says is what `run` does.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
import semver

from commonshelf.catalogue.contract import Advisory, AppEntry
from commonshelf.installation.policy import AppPolicy, Decision, blocked, decide, severity_rank


class AdvisoryView(msgspec.Struct, frozen=True, kw_only=True):
    """One advisory affecting the running version, and what to do about it."""

    id: str
    severity: str  # CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN
    package: str
    package_fixed: str  # the package version that fixes it ("" when none exists)
    fixed_in: str  # the oldest released app version that fixes it ("" while none does)
    title: str
    found: str
    summary: str  # "CVE-… (critical, openssl 3.0.11-1 → fixed in app 1.2.0)"
    action: str  # what to do, in one sentence
    command: str  # the command an operator runs to fix it ("" when none is needed or possible)


class Exposure(msgspec.Struct, frozen=True, kw_only=True):
    """The advisories affecting the version an app runs here, most severe first."""

    app: str
    version: str
    worst: str  # the most severe one's severity ("" when there are none)
    advisories: list[AdvisoryView]

    @property
    def count(self) -> int:
        return len(self.advisories)

    def short(self) -> str:
        """`2 (critical)`, or `none`."""
        return f"{self.count} ({self.worst.lower()})" if self.advisories else "none"


def summary(app: str, advisory: Advisory) -> str:
    """One advisory in a line: id, severity, package (and its fix), and the app's fix."""
    package = " ".join(p for p in (advisory.package, advisory.package_fixed) if p)
    fixed = f"fixed in {app} {advisory.fixed_in}" if advisory.fixed_in else "no fixed release yet"
    return f"{advisory.id} ({advisory.severity.lower()}, {package} → {fixed})"


def exposure(
    app: str,
    version: str,
    entry: AppEntry | None,
    policy: AppPolicy,
    *,
    min_level: int,
    now: datetime,
) -> Exposure:
    """The advisories affecting `version` of `app`, each with what fixes it here."""
    found = entry.advisories_for(version) if entry else ()
    if not found or entry is None:
        return Exposure(app=app, version=version, worst="", advisories=[])

    def decision(automatic: bool) -> Decision:
        return decide(
            version,
            dict(entry.versions),
            policy,
            min_level=min_level,
            now=now,
            automatic=automatic,
            app=app,
            advisories=entry.advisories,
        )

    unattended, operator = decision(True), decision(False)
    views = []
    for advisory in found:
        action, command = _action(
            app, version, advisory, entry, policy, min_level, unattended, operator
        )
        views.append(
            AdvisoryView(
                id=advisory.id,
                severity=advisory.severity.upper(),
                package=advisory.package,
                package_fixed=advisory.package_fixed,
                fixed_in=advisory.fixed_in,
                title=advisory.title,
                found=advisory.found,
                summary=summary(app, advisory),
                action=action,
                command=command,
            )
        )
    worst = min(found, key=lambda a: severity_rank(a.severity)).severity.upper()
    return Exposure(app=app, version=version, worst=worst, advisories=views)


def _action(
    app: str,
    current: str,
    advisory: Advisory,
    entry: AppEntry,
    policy: AppPolicy,
    min_level: int,
    unattended: Decision,
    operator: Decision,
) -> tuple[str, str]:
    """(what to do, the command to run) for one advisory affecting `current`."""
    if unattended.target and unattended.target not in advisory.affected:
        return f"the next unattended run moves {app} to {unattended.target}, which fixes it.", ""
    if operator.target and operator.target not in advisory.affected:
        command = f"commonshelf update {app}"
        waits = unattended.held.get(operator.target, "is held by the update policy")
        return (
            f"{operator.target} fixes it; unattended updates hold it ({waits}): run "
            f"`{command}` to apply it now.",
            command,
        )
    base = semver.Version.parse(current)
    fixing = sorted(
        (
            v
            for v in entry.versions
            if semver.Version.parse(v).compare(base) > 0 and v not in advisory.affected
        ),
        key=semver.Version.parse,
    )
    refused = ""
    for version in fixing:  # the smallest step that fixes it and may run here
        never = blocked(version, entry.versions[version], policy, min_level)
        if never:
            refused = refused or f"{version} fixes it but {never}"
            continue
        command = f"commonshelf update {app} --to {version}"
        reason = operator.held.get(version, "is not chosen by the update policy")
        if f"`{command}`" in reason:
            return f"{version} fixes it but {reason}.", command
        return f"{version} fixes it but {reason}: run `{command}`.", command
    if refused:
        return f"{refused}; no other released version fixes it yet.", ""
    upstream = (
        f" ({advisory.package} {advisory.package_fixed} does)" if advisory.package_fixed else ""
    )
    return (
        f"no released version of {app} fixes it yet{upstream}; `commonshelf status` says "
        "when one does.",
        "",
    )
