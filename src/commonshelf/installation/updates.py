"""Updates, the way an unattended installation applies them.

One pass (`commonshelf run`, or `update`) refreshes the signed catalogue once, decides
per app by its policy (`policy.decide`), and moves each app with the update procedure:

1. the new version is rendered and admitted (architecture, settings, no host control)
   and its images are fetched from the registry, while nothing has changed yet;
2. the app is backed up: the recipe's hooks, then each data volume, checksummed;
3. the new version is deployed pinned by digest (each service's own update order:
   start-first for stateless services, stop-first for those that own data), and the agent
   waits for every service's health and for the main health path through the proxy;
4. on failure Swarm rolls back; the agent redeploys the previous version and checks it
   serves, compares the data with the backup and, if the failed version changed it,
   backs the changed data up (nothing is lost) and restores the backup; the failed
   version is marked bad here so it is not retried, and the history says why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec
import semver

from commonshelf.installation import journal, recovery
from commonshelf.installation.admission import check_architecture, validated_settings
from commonshelf.installation.policy import Decision, blocked, decide, load_policy, save_policy
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import CommonshelfError, DeployError

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
        )
        out.append((app, record.version, decision))
    return out


def move(agent: Agent, app: str, version: str, *, why: str) -> journal.Event:
    """Move an installed app to `version` with the update procedure; the event recorded."""
    with agent.holding(why):
        config = agent.config()
        deployer = agent.deployer(config)
        current = agent.record(app)
        _, entry = agent.catalog().version(app, version)
        check_architecture(app, version, entry.runtime)
        settings = validated_settings(
            app,
            entry.runtime,
            {k: v for k, v in current.settings.items() if k in entry.runtime.settings},
        )
        compose = agent.compose(entry.runtime.compose)
        deployer.render(app, entry.runtime, compose, settings)  # refused before any change
        old_runtime = agent.runtime(app, current.version)
        old_compose = agent.compose(old_runtime.compose)
        try:
            # the new images first: a registry that is down or lost one stops the update
            # here, while the running version is untouched
            recovery.ensure_images(deployer.client, entry.runtime)
            backup_id = recovery.take(agent, app, "update", current)
        except CommonshelfError as exc:
            return agent.note(
                journal.Event(
                    app=app,
                    action="update",
                    outcome="refused",
                    sentence=f"{app} stays at {current.version}: {exc.what}",
                    from_version=current.version,
                    to_version=version,
                )
            )
        try:
            deployer.deploy_app(
                app,
                version,
                entry.runtime,
                compose,
                settings,
                previous=current.version,
                backup=backup_id or "",
            )
        except DeployError as failure:
            return _recover(agent, app, version, backup_id, failure, old_compose)
        kept = f"; backup {backup_id} holds the data from before" if backup_id else ""
        return agent.note(
            journal.Event(
                app=app,
                action="update",
                outcome="done",
                sentence=f"Updated {app} from {current.version} to {version} on {now_iso()}{kept}.",
                from_version=current.version,
                to_version=version,
                backup=backup_id or "",
            )
        )


def _recover(
    agent: Agent,
    app: str,
    version: str,
    backup_id: str | None,
    failure: DeployError,
    old_compose: dict[str, object],
) -> journal.Event:
    """After a failed update: the previous version serves, its data is what it was, and the
    failed version is marked bad. The event says what happened in one sentence."""
    deployer = agent.deployer()
    current = agent.record(app)  # the record still names the previous version
    old_runtime = agent.runtime(app, current.version)
    why = failure.what.rstrip(".")
    policy = load_policy(agent.home, app)
    save_policy(
        agent.home, app, msgspec.structs.replace(policy, bad={**policy.bad, version: why[:200]})
    )
    try:
        deployer.deploy_app(
            app,
            current.version,
            old_runtime,
            dict(old_compose),
            current.settings,
            previous=current.previous,
            backup=current.backup,
        )
    except DeployError as again:
        return agent.note(
            journal.Event(
                app=app,
                action="update",
                outcome="failed",
                sentence=f"{app} {version} failed ({why}) and {current.version} did not come "
                f"back ({again.what.rstrip('.')}); run `commonshelf restore {app}` to bring "
                f"back backup {backup_id}.",
                from_version=current.version,
                to_version=version,
                backup=backup_id or "",
            )
        )
    data = "it had no data"
    if backup_id:
        folder = recovery.backups_dir(agent.home, app) / backup_id
        changed = recovery.changed_volumes(deployer, current, old_runtime, folder)
        if changed:
            safety = recovery.take(agent, app, "safety", current)
            recovery.put_back(agent, app, folder)
            data = (
                f"it had changed the data ({', '.join(changed)}), so backup {backup_id} was "
                f"restored (the changed data is kept in backup {safety})"
            )
        else:
            data = "the data was not changed"
    return agent.note(
        journal.Event(
            app=app,
            action="update",
            outcome="rolled-back",
            sentence=f"{app} {version} failed on {now_iso()} ({why}); {current.version} serves "
            f"again and {data}; {version} will not be retried.",
            from_version=current.version,
            to_version=version,
            backup=backup_id or "",
        )
    )


def update(
    agent: Agent, apps: list[str] | None, *, to: str | None = None, automatic: bool = False
) -> list[journal.Event]:
    """Apply what policy allows (or `to`, for one app: the operator's explicit choice, which
    may be a major version or one needing a manual migration); one event per app moved or
    held."""
    with agent.holding("run" if automatic else "update"):
        if to is not None:
            if not apps or len(apps) != 1:
                raise DeployError(
                    "--to names a version of one app; nothing was changed.",
                    "write `commonshelf update APP --to VERSION`.",
                )
            [app] = apps
            agent.catalog().version(app, to)
            reason = refusal(agent, app, to)
            if reason:
                raise DeployError(
                    f"{app} {to} {reason}; nothing was changed.", f"see `commonshelf info {app}`."
                )
            if agent.record(app).version == to:
                return []
            return [move(agent, app, to, why="update")]
        events = []
        for app, running, decision in plan(agent, apps, automatic=automatic):
            if decision.target is not None:
                events.append(
                    move(agent, app, decision.target, why="run" if automatic else "update")
                )
            elif decision.held:
                sentence = decision.sentence(app, running).replace(" APP ", f" {app} ") + "."
                last = journal.last(agent.home, app)
                event = journal.Event(
                    app=app,
                    action="update",
                    outcome="held",
                    sentence=sentence,
                    from_version=running,
                )
                if last is None or last.sentence != sentence:
                    agent.note(event)
                events.append(event)
        return events
