"""What each installed app should run next, before anything is changed.

`plan` asks the policy (`policy.decide`) per app; `newest_allowed` is a first install's
choice; `refusal` says why a version may never run here. A version the publisher revoked is
moved away from on the next run: to the newest version policy allows (the maintenance
window and the `auto` level do not hold it back), else back to the version it replaced
(`withdrawal`), the way `commonshelf rollback` goes back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import semver

from commonshelf.installation.policy import Decision, blocked, decide, load_policy
from commonshelf.platform.errors import DeployError

if TYPE_CHECKING:
    from commonshelf.installation.agent import Agent


def refusal(agent: Agent, app: str, version: str) -> str | None:
    """Why `version` may never be installed here (revoked, under the minimum level, failed
    here before), or None."""
    _, entry = agent.catalog().version(app, version)
    return blocked(version, entry, load_policy(agent.home, app), agent.config().min_level)


def newest_allowed(agent: Agent, app: str) -> str:
    """The version a first install picks: the newest that may be installed here."""
    catalog = agent.catalog()
    catalog.version(app)  # an unknown app is one clear line
    policy = load_policy(agent.home, app)
    level = agent.config().min_level
    allowed = [v for v, e in catalog.versions(app).items() if not blocked(v, e, policy, level)]
    if not allowed:
        raise DeployError(
            f"No version of {app} may be installed here (each is revoked, failed here before "
            f"or is under level {level}); nothing was changed.",
            f"see `commonshelf info {app}`.",
        )
    return max(allowed, key=semver.Version.parse)


def plan(
    agent: Agent, apps: list[str] | None, *, automatic: bool
) -> list[tuple[str, str, Decision]]:
    """(app, running version, decision) for each installed app (or each of `apps`)."""
    installed = agent.installed()
    for app in apps or []:
        agent.record(app)  # an app that is not installed is one clear line
    catalog = agent.catalog()
    now = datetime.now(UTC)
    level = agent.config().min_level
    out = []
    for app, record in sorted(installed.items()):
        if apps and app not in apps:
            continue
        decision = decide(
            record.version,
            catalog.versions(app),
            load_policy(agent.home, app),
            min_level=level,
            now=now,
            automatic=automatic,
            app=app,
            advisories=catalog.apps[app].advisories if app in catalog.apps else (),
        )
        out.append((app, record.version, decision))
    return out


def withdrawal(agent: Agent, app: str, running: str) -> str | None:
    """The version to go back to when `running` was revoked and no newer version may run:
    the one it replaced, if that one may still run here (None: nowhere to go)."""
    catalog = agent.catalog()
    entry = catalog.versions(app).get(running)
    record = agent.record(app)
    if entry is None or not entry.revoked or not record.previous:
        return None
    previous = catalog.versions(app).get(record.previous)
    if previous is None:
        return None
    if blocked(record.previous, previous, load_policy(agent.home, app), agent.config().min_level):
        return None
    return record.previous
