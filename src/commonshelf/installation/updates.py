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

`HOME/pending/APP.json` names an update between its backup and its event (written before
the deploy, removed after the event). A run killed in between (or an engine restarted
under it) leaves it, and the next run finishes that update first (`resume`): if Swarm took
the new version, it waits for it to serve and records it, or rolls it back as above; if
not, the update is planned again with a fresh backup. Partial backups go first.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import docker.errors
import msgspec

from commonshelf.catalogue.contract import Runtime
from commonshelf.installation import image_cleanup, journal, recovery, swarm
from commonshelf.installation.admission import check_architecture, validated_settings
from commonshelf.installation.choice import plan, refusal, withdrawal
from commonshelf.installation.policy import mark_bad
from commonshelf.installation.state import Installed, read_record, write_record
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import CommonshelfError, DeployError

if TYPE_CHECKING:
    from pathlib import Path

    from commonshelf.installation.agent import Agent

RESUMED = " (finished by this run: the run that started it was interrupted)"


class Pending(msgspec.Struct, frozen=True, kw_only=True):
    """An update between its backup and its event in the history (see the module's doc)."""

    app: str
    from_version: str
    to_version: str
    backup: str = ""  # the backup taken before it, which a rollback compares the data with
    started: str
    reason: str = ""  # why policy chose it (the advisories it fixes), said in its event


def _pending(current: Installed, version: str, backup_id: str | None, reason: str) -> Pending:
    return Pending(
        app=current.app,
        from_version=current.version,
        to_version=version,
        backup=backup_id or "",
        started=now_iso(),
        reason=reason,
    )


def pending_path(home: Path, app: str) -> Path:
    return home / "pending" / f"{app}.json"


def pending(home: Path) -> list[Pending]:
    """The updates a run left unfinished, by app name."""
    return [read_record(path, Pending) for path in sorted((home / "pending").glob("*.json"))]


def move(agent: Agent, app: str, version: str, *, why: str, reason: str = "") -> journal.Event:
    """Move an installed app to `version` with the update procedure; the event recorded
    says `reason` (why policy chose it: the advisories it fixes)."""
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
        old_compose = agent.compose(agent.runtime(app, current.version).compose)
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
        left = _pending(current, version, backup_id, reason)
        write_record(pending_path(agent.home, app), left)
        return _deploy(
            agent, current, (version, entry.runtime, compose, settings), old_compose, left
        )


Target = tuple[str, Runtime, dict[str, Any], dict[str, str]]  # version, contract, compose, settings


def _deploy(
    agent: Agent,
    current: Installed,
    target: Target,
    old_compose: dict[str, Any],
    left: Pending,
    resumed: str = "",
) -> journal.Event:
    """The update's deploy (the deployer writes the record once the new version serves) and
    its event; then the pending update is done with."""
    app, backup_id = current.app, left.backup or None
    version, runtime, compose, settings = target
    deployer = agent.deployer()
    expected = deployer.expected(app, deployer.render(app, runtime, compose, settings))
    try:
        deployer.deploy_app(
            app,
            version,
            runtime,
            dict(compose),
            settings,
            previous=current.version,
            backup=backup_id or "",
        )
    except DeployError as failure:
        if _taken(agent, current, expected, left.started):
            event = _recover(agent, app, version, backup_id, failure, old_compose)
        else:  # it never ran (the engine went away, a secret is wrong…): not its fault
            event = agent.note(
                journal.Event(
                    app=app,
                    action="update",
                    outcome="failed",
                    sentence=f"{app} stays at {current.version}: {version} did not reach Swarm "
                    f"({failure.what.rstrip('.')}); the running version was not touched and "
                    "the next run tries again.",
                    from_version=current.version,
                    to_version=version,
                    backup=backup_id or "",
                )
            )
    else:
        event = _updated(agent, left, now_iso(), resumed)
    pending_path(agent.home, app).unlink(missing_ok=True)
    return event


def _updated(agent: Agent, done: Pending, when: str, resumed: str = "") -> journal.Event:
    kept = f"; backup {done.backup} holds the data from before" if done.backup else ""
    chosen = f"; {done.reason}" if done.reason else ""
    return agent.note(
        journal.Event(
            app=done.app,
            action="update",
            outcome="done",
            sentence=f"Updated {done.app} from {done.from_version} to {done.to_version} on "
            f"{when}{resumed}{chosen}{kept}.",
            from_version=done.from_version,
            to_version=done.to_version,
            backup=done.backup,
        )
    )


def resume(agent: Agent, left: Pending) -> journal.Event | None:
    """Finish an update a run left between its backup and its event: the event when only it
    is missing; the deploy's wait, record and event (or the rollback) when Swarm took the new
    version; nothing when it did not (the plan moves the app again, with a fresh backup)."""
    app, path = left.app, pending_path(agent.home, left.app)
    current = agent.installed().get(app)
    if current is None or current.version not in (left.from_version, left.to_version):
        path.unlink(missing_ok=True)  # removed or moved since: nothing left to finish
        return None
    if current.version == left.to_version:  # recorded; the run stopped before its event
        said = any(
            e.action == "update" and e.to_version == left.to_version and e.at >= left.started
            for e in journal.events(agent.home, app)
        )
        event = None if said else _updated(agent, left, current.installed_at, RESUMED)
        path.unlink(missing_ok=True)
        return event
    _, entry = agent.catalog().version(app, left.to_version)
    compose = agent.compose(entry.runtime.compose)
    settings = validated_settings(
        app,
        entry.runtime,
        {k: v for k, v in current.settings.items() if k in entry.runtime.settings},
    )
    deployer = agent.deployer()
    expected = deployer.expected(app, deployer.render(app, entry.runtime, compose, settings))
    if not _taken(agent, current, expected, left.started):  # planned again, fresh backup
        path.unlink(missing_ok=True)
        return None
    old_compose = agent.compose(agent.runtime(app, current.version).compose)
    target = (left.to_version, entry.runtime, compose, settings)
    return _deploy(agent, current, target, old_compose, left, RESUMED)


def _taken(agent: Agent, current: Installed, expected: dict[str, str], since: str) -> bool:
    """Whether Swarm was handed the new version (sent at `since`): a service whose image
    changes runs it in its spec, or Swarm rolled that service back since then (a resumed
    update then fails again, and the data is compared with the backup taken before it)."""
    for service in swarm.stack_services(agent.client, current.stack):
        new = expected.get(service.name)
        old = current.images.get(service.name.removeprefix(f"{current.stack}_"))
        status = service.attrs.get("UpdateStatus") or {}
        if new is None or new == old:
            continue
        if swarm.service_image(service) == new or (
            str(status.get("State", "")).startswith("rollback")
            and str(status.get("StartedAt", ""))[:19] >= since[:19]  # both UTC, ISO 8601
        ):
            return True
    return False


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
    mark_bad(agent.home, app, version, why[:200])
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
        events = recovery.clean_interrupted(agent)
        for left in pending(agent.home):
            if not apps or left.app in apps:
                finished = resume(agent, left)
                events += [finished] if finished else []
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
                return events
            return [*events, move(agent, app, to, why="update")]
        for app, running, decision in plan(agent, apps, automatic=automatic):
            back = None if decision.target else withdrawal(agent, app, running)
            if decision.target is not None:
                why = "run" if automatic else "update"
                events.append(move(agent, app, decision.target, why=why, reason=decision.why))
            elif back is not None:
                reason = agent.catalog().versions(app)[running].revoked
                events.append(recovery.rollback(agent, app, revoked=reason))
            elif decision.held:
                sentence = decision.sentence(app, running) + "."
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
        if any(e.outcome in ("done", "rolled-back") for e in events):
            _prune(agent)
        return events


def _prune(agent: Agent) -> None:
    """Housekeeping after an app moved: old versions' images go (`image_cleanup`). It never
    fails an update: what cannot be removed now is tried again after the next one."""
    left: dict[str, set[str]] = {}
    for record in pending(agent.home):
        left.setdefault(record.app, set()).update({record.from_version, record.to_version})
    with contextlib.suppress(CommonshelfError, docker.errors.DockerException, OSError):
        image_cleanup.prune_images(agent, left)
