"""Back up and restore an app's data the way its recipe says: hooks, then volumes.

`backup.pre` commands make the data volumes a consistent copy (a database dump),
each data volume is copied through the engine's archive API, `backup.post` undoes
what `pre` did; after the volumes are restored and the app runs again,
`backup.restore` loads the dump back. The agent backs up before every update; the
standard matrix proves the same procedure restores the seeded data.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import docker.errors
import msgspec

from commonshelf.catalogue.contract import Runtime
from commonshelf.installation.deployer import STACK_LABEL, Deployer
from commonshelf.installation.state import Installed, read_record, write_record
from commonshelf.installation.volumes import archive_volume, restore_volume
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import DeployError

MANIFEST = "backup.json"


class Backup(msgspec.Struct, frozen=True, kw_only=True):
    """What one backup folder holds."""

    app: str
    version: str
    created: str
    volumes: dict[str, str]  # data volume -> tar file in the folder
    hooks: int  # backup hook commands that ran


def back_up(deployer: Deployer, record: Installed, runtime: Runtime, into: Path) -> Backup:
    """Copy the app's data into the folder `into`, which appears only when complete."""
    service = runtime.backup.service if runtime.backup else ""
    pre = runtime.backup.pre if runtime.backup else ()
    post = runtime.backup.post if runtime.backup else ()
    work = into.parent / f".{into.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ran = 0
    try:
        for command in pre:
            deployer.exec(record.app, service, command)
            ran += 1
        try:
            volumes = {}
            for data in runtime.data:
                archive = f"{data.volume}.tar"
                archive_volume(
                    deployer.client,
                    record.images[data.service],
                    f"{record.stack}_{data.volume}",
                    work / archive,
                )
                volumes[data.volume] = archive
        finally:
            for command in post:
                deployer.exec(record.app, service, command)
                ran += 1
        made = Backup(
            app=record.app, version=record.version, created=now_iso(), volumes=volumes, hooks=ran
        )
        write_record(work / MANIFEST, made)
        work.rename(into)
    except (docker.errors.DockerException, OSError) as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise DeployError(
            f"Could not back up the data of {record.app} ({exc}); nothing was changed.",
            "check free disk space in the installation's home.",
        ) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return made


def restore_volumes(
    deployer: Deployer, app: str, images: dict[str, str], runtime: Runtime, folder: Path
) -> Backup:
    """Put a backup's volume copies back (the app's stack must not be running)."""
    made = read_record(folder / MANIFEST, Backup)
    if made.app != app:
        raise DeployError(
            f"The backup {folder} holds the data of {made.app}, not of {app}; nothing was "
            "restored.",
            f"pick a backup of {app} (`commonshelf backups {app}`).",
        )
    stack = deployer.config.stack(app)
    for data in runtime.data:
        archive = made.volumes.get(data.volume)
        if archive is None:
            raise DeployError(
                f"The backup {folder} holds no copy of the volume {data.volume}.",
                "pick another backup.",
            )
        name = f"{stack}_{data.volume}"
        with contextlib.suppress(docker.errors.NotFound):  # replace the content, not merge
            deployer.client.volumes.get(name).remove(force=False)
        deployer.client.volumes.create(name, labels={STACK_LABEL: stack})
        restore_volume(deployer.client, images[data.service], name, folder / archive)
    return made


def run_restore_hooks(deployer: Deployer, app: str, runtime: Runtime) -> int:
    """After the restored app is up: the recipe's `backup.restore` commands."""
    hooks = runtime.backup
    if hooks is None:
        return 0
    for command in hooks.restore:
        deployer.exec(app, hooks.service, command)
    return len(hooks.restore)
