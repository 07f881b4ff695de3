"""Backups an operator can name, restore and rollback: the data side of an installation.

A backup is a folder `HOME/backups/APP/<id>` (the id is the time and the version it was
taken with) holding the recipe's consistent dump and a tar of every data volume, each
checksummed; it appears only when complete. A restore never destroys anything: the app's
current data is backed up first (a "safety" backup), then the app is stopped, its volumes
are replaced by the backup's, the version the backup was taken with is deployed, and the
recipe's restore hooks load the dump. Rollback is a restore of the backup taken before
the last update.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors

from commonshelf.catalogue.contract import Runtime
from commonshelf.installation import journal, swarm
from commonshelf.installation.backup import (
    MANIFEST,
    Backup,
    Reason,
    back_up,
    content_digest,
    of_app,
    restore_volumes,
    run_restore_hooks,
)
from commonshelf.installation.deployer import STACK_LABEL, Deployer
from commonshelf.installation.policy import mark_bad
from commonshelf.installation.state import Installed, read_record
from commonshelf.installation.volumes import archive_volume, remove_holders
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import DeployError

if TYPE_CHECKING:
    from commonshelf.installation.agent import Agent

KEPT = 5  # newest backups kept per app (the one an app's record points at is always kept)


def backups_dir(home: Path, app: str) -> Path:
    return home / "backups" / app


def list_backups(home: Path, app: str) -> list[tuple[str, Backup]]:
    """The complete backups of an app, oldest first (partial ones are skipped)."""
    folder = backups_dir(home, app)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not (path / MANIFEST).is_file():
            continue
        found.append((path.name, read_record(path / MANIFEST, Backup)))
    return found


def take(agent: Agent, app: str, reason: Reason, record: Installed | None = None) -> str | None:
    """Back up the app now (its recipe's hooks, then every data volume); the backup's id,
    or None for an app without data."""
    record = record or agent.record(app)
    runtime = agent.runtime(app, record.version)
    if not runtime.data:
        return None
    root = backups_dir(agent.home, app)
    stamp = now_iso().replace("-", "").replace(":", "")
    backup_id = f"{stamp}-{record.version}"
    n = 1
    while (root / backup_id).exists():
        n += 1
        backup_id = f"{stamp}.{n}-{record.version}"
    back_up(agent.deployer(), record, runtime, root / backup_id, reason)
    prune(agent.home, app, keep={backup_id, record.backup})
    return backup_id


def prune(home: Path, app: str, keep: set[str]) -> None:
    """Keep the newest KEPT backups of the app and those named in `keep`; partial folders
    left by a crash are removed."""
    root = backups_dir(home, app)
    for path in root.glob(".*.partial"):
        shutil.rmtree(path, ignore_errors=True)
    ids = [backup_id for backup_id, _ in list_backups(home, app)]
    for old in ids[:-KEPT]:
        if old not in keep:
            shutil.rmtree(root / old, ignore_errors=True)


def clean_interrupted(agent: Agent) -> list[journal.Event]:
    """Remove what an agent killed mid-backup (or an engine restarted under it) left: the
    `.partial` backup folders and comparison copies of every app, and the holder containers
    of the installed apps' volumes. The caller holds the lock, so none of them is in use.
    One event per app whose partial backup was removed."""
    events = []
    root = agent.home / "backups"
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        cut = sorted(folder.glob(".*.partial"))
        for path in [*cut, *folder.glob(".compare-*")]:
            shutil.rmtree(path, ignore_errors=True)
        if cut:
            names = ", ".join(p.name[1 : -len(".partial")] for p in cut)
            events.append(
                agent.note(
                    journal.Event(
                        app=folder.name,
                        action="backup",
                        outcome="done",
                        sentence=f"Removed the partial backup {names} of {folder.name}, cut "
                        f"short by an interrupted run, on {now_iso()}.",
                    )
                )
            )
    volumes = [  # the stacks' own volumes: the catalogue is not needed (nor asked) here
        volume.name
        for record in agent.installed().values()
        for volume in agent.client.volumes.list(filters={"label": f"{STACK_LABEL}={record.stack}"})
    ]
    remove_holders(agent.client, volumes)
    return events


def find(home: Path, app: str, backup_id: str | None) -> Path:
    """A backup folder of `app` by id (default: the newest), or one line saying which exist."""
    ids = [backup_id for backup_id, _ in list_backups(home, app)]
    if not ids:
        raise DeployError(
            f"{app} has no backup here; nothing was restored.",
            f"make one with `commonshelf backup {app}`.",
        )
    chosen = backup_id or ids[-1]
    if chosen not in ids:
        raise DeployError(
            f"{app} has no backup {chosen} (backups: {', '.join(ids)}); nothing was restored.",
            f"pick one listed by `commonshelf backups {app}`.",
        )
    return backups_dir(home, app) / chosen


def changed_volumes(
    deployer: Deployer, record: Installed, runtime: Runtime, folder: Path
) -> list[str]:
    """The data volumes whose files now differ from the backup in `folder`."""
    made = read_record(folder / MANIFEST, Backup)
    changed = []
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".compare-") as work:
        for data in runtime.data:
            copy = Path(work) / f"{data.volume}.tar"
            archive_volume(
                deployer.client,
                record.images[data.service],
                f"{record.stack}_{data.volume}",
                copy,
            )
            if content_digest(copy) != made.content.get(data.volume):
                changed.append(data.volume)
            copy.unlink()
    return changed


def ensure_images(client: docker.DockerClient, runtime: Runtime) -> None:
    """The version's images on this engine, pulled by digest from the catalogue's registry
    when missing (an installation imported on a fresh machine)."""
    for name, service in runtime.services.items():
        try:
            client.images.get(service.image)
        except docker.errors.ImageNotFound:
            try:
                client.images.pull(service.image)
            except docker.errors.APIError as exc:
                raise DeployError(
                    f"Cannot fetch the image of service '{name}' ({service.image}): "
                    f"{exc.explanation}; nothing was changed.",
                    "check that the catalogue's registry is reachable from this machine.",
                ) from None


def put_back(agent: Agent, app: str, folder: Path) -> Installed:
    """Bring `app` back to the backup in `folder`: the version it was taken with, then its
    data. Callers back up the current data first."""
    made = of_app(folder, app)  # damaged or another app's: refused before any change
    config = agent.config()
    deployer = agent.deployer(config)
    _, entry = agent.catalog().version(app, made.version)
    compose = agent.compose(entry.runtime.compose)
    ensure_images(deployer.client, entry.runtime)
    current = deployer.installed().get(app)
    swarm.remove(deployer.client, config.stack(app))  # a database never runs twice on a volume
    images = {name: service.image for name, service in entry.runtime.services.items()}
    restore_volumes(deployer, app, images, entry.runtime, folder)
    record = deployer.deploy_app(
        app,
        made.version,
        entry.runtime,
        compose,
        made.settings,
        previous=current.previous if current else "",
        backup=current.backup if current else "",
    )
    run_restore_hooks(deployer, app, entry.runtime)
    return record


def restore(agent: Agent, app: str, backup_id: str | None = None) -> journal.Event:
    """`commonshelf restore APP [BACKUP]`: the current data is backed up first."""
    with agent.holding("restore"):
        folder = find(agent.home, app, backup_id)
        made = of_app(folder, app)  # damaged or another app's: refused before any change
        safety = None
        if app in agent.installed():
            safety = take(agent, app, "safety")
        put_back(agent, app, folder)
        kept = f"; the data it replaced is in backup {safety}" if safety else ""
        return agent.note(
            journal.Event(
                app=app,
                action="restore",
                outcome="done",
                sentence=f"Restored {app} to backup {folder.name} ({made.version}) on "
                f"{now_iso()}{kept}.",
                to_version=made.version,
                backup=folder.name,
            )
        )


def rollback(agent: Agent, app: str, revoked: str = "") -> journal.Event:
    """`commonshelf rollback APP`: back to the version before the last update, with the data
    it had then (what was written since stays in a safety backup). The version left is not
    applied again automatically. `revoked`: the publisher's reason, when a run goes back
    because the running version was revoked and no newer one may run."""
    with agent.holding("rollback"):
        record = agent.record(app)
        if not record.previous:
            raise DeployError(
                f"{app} {record.version} has no earlier version here to roll back to; nothing "
                "was changed.",
                f"restore a backup instead (`commonshelf backups {app}`).",
            )
        safety = take(agent, app, "safety")
        if record.backup:
            put_back(agent, app, find(agent.home, app, record.backup))
        else:  # an app without data: only the version moves back
            _, entry = agent.catalog().version(app, record.previous)
            agent.deployer().deploy_app(
                app,
                record.previous,
                entry.runtime,
                agent.compose(entry.runtime.compose),
                {k: v for k, v in record.settings.items() if k in entry.runtime.settings},
            )
        if not revoked:  # (a revoked version is never applied again anyway)
            mark_bad(agent.home, app, record.version, "rolled back by the operator")
        kept = f"; the data written since is in backup {safety}" if safety else ""
        why = (
            f" because the publisher revoked it ({revoked}) and no newer version may run"
            if revoked
            else ""
        )
        return agent.note(
            journal.Event(
                app=app,
                action="rollback",
                outcome="done",
                sentence=f"Rolled {app} back from {record.version} to {record.previous}{why} "
                f"on {now_iso()}{kept}; {record.version} will not be applied again "
                "automatically.",
                from_version=record.version,
                to_version=record.previous,
                backup=record.backup,
            )
        )


def remove(agent: Agent, app: str, keep_data: bool) -> journal.Event:
    """`commonshelf remove APP`: a last backup is taken before data volumes are deleted, and
    the app's secret files stay, so that backup can be restored later."""
    with agent.holding("remove"):
        record = agent.record(app)
        runtime = agent.runtime(app, record.version)
        last = None if keep_data else take(agent, app, "remove", record)
        kept = agent.deployer().remove_app(
            app, tuple(d.volume for d in runtime.data), keep_data=keep_data
        )
        # the app's secret files stay (0600): its last backup needs them to be restored
        said = (
            f"its data volumes {', '.join(kept)} were kept"
            if keep_data and kept
            else (f"its data is in backup {last}" if last else "it had no data")
        )
        return agent.note(
            journal.Event(
                app=app,
                action="remove",
                outcome="done",
                sentence=f"Removed {app} {record.version} on {now_iso()}; {said}.",
                from_version=record.version,
                backup=last or "",
            )
        )
