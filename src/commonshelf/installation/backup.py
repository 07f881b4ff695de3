"""Back up and restore an app's data the way its recipe says: hooks, then volumes.

`backup.pre` commands make the data volumes a consistent copy (a database dump),
each data volume is copied through the engine's archive API, `backup.post` undoes
what `pre` did; after the volumes are restored and the app runs again,
`backup.restore` loads the dump back. The agent backs up before every update; the
standard matrix proves the same procedure restores the seeded data.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tarfile
from pathlib import Path
from typing import Literal

import docker.errors
import msgspec
import requests

from commonshelf.catalogue.contract import Runtime
from commonshelf.installation.deployer import STACK_LABEL, Deployer
from commonshelf.installation.state import Installed, read_record, write_record
from commonshelf.installation.volumes import NoSpace, archive_volume, restore_volume, volume_sizes
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import DeployError

MANIFEST = "backup.json"
CHUNK = 1 << 20
MB = 1_000_000

Reason = Literal["update", "operator", "safety", "export", "remove"]


class Backup(msgspec.Struct, frozen=True, kw_only=True):
    """What one backup folder holds."""

    app: str
    version: str
    created: str
    volumes: dict[str, str]  # data volume -> tar file in the folder
    hooks: int  # backup hook commands that ran
    reason: Reason = "operator"  # why it was taken
    settings: dict[str, str] = {}  # the app's settings when it was taken
    sha256: dict[str, str] = {}  # tar file -> its checksum, checked before a restore
    content: dict[str, str] = {}  # data volume -> digest of its files (not their times)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_digest(archive: Path) -> str:
    """A digest of what a volume holds: each entry's name, kind, owner, mode and bytes, in
    name order, not its times, so two copies of unchanged data compare equal."""
    entries = []
    with tarfile.open(archive) as tar:
        for member in tar:
            body = hashlib.sha256()
            if member.isfile():
                handle = tar.extractfile(member)
                if handle is not None:
                    while chunk := handle.read(CHUNK):
                        body.update(chunk)
            entries.append(
                f"{member.name}\0{member.type!r}\0{member.uid}:{member.gid}\0{member.mode:o}"
                f"\0{member.linkname}\0{body.hexdigest()}"
            )
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()


def verified(folder: Path) -> Backup:
    """A backup's manifest, after every tar file matched its recorded checksum."""
    made = read_record(folder / MANIFEST, Backup)
    for name in made.volumes.values():
        path = folder / name
        expected = made.sha256.get(name)
        if not path.is_file() or expected is None or file_sha256(path) != expected:
            raise DeployError(
                f"The backup {folder} is damaged: {name} does not match its checksum; nothing "
                "was restored.",
                f"pick another backup (`commonshelf backups {made.app}`).",
            )
    return made


def of_app(folder: Path, app: str) -> Backup:
    """A verified backup of `app`; one of another app is refused before anything changes."""
    made = verified(folder)
    if made.app != app:
        raise DeployError(
            f"The backup {folder} holds the data of {made.app}, not of {app}; nothing was "
            "restored.",
            f"pick a backup of {app} (`commonshelf backups {app}`).",
        )
    return made


def back_up(
    deployer: Deployer,
    record: Installed,
    runtime: Runtime,
    into: Path,
    reason: Reason = "operator",
) -> Backup:
    """Copy the app's data into the folder `into`, which appears only when complete. A
    backup that would not fit is refused before anything is written (the engine's measure
    of the volumes); one that fills the disk anyway is removed and refused the same way."""
    service = runtime.backup.service if runtime.backup else ""
    pre = runtime.backup.pre if runtime.backup else ()
    post = runtime.backup.post if runtime.backup else ()
    work = into.parent / f".{into.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ran = 0
    try:
        names = [f"{record.stack}_{data.volume}" for data in runtime.data]
        check_space(record.app, into.parent, sum(volume_sizes(deployer.client, names).values()))
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
            app=record.app,
            version=record.version,
            created=now_iso(),
            volumes=volumes,
            hooks=ran,
            reason=reason,
            settings=dict(record.settings),
            sha256={name: file_sha256(work / name) for name in volumes.values()},
            content={volume: content_digest(work / name) for volume, name in volumes.items()},
        )
        write_record(work / MANIFEST, made)
        work.rename(into)
    except NoSpace as full:
        data_bytes = full.size + _written(work)
        shutil.rmtree(work, ignore_errors=True)
        raise _too_little_space(record.app, into.parent, data_bytes) from None
    except (docker.errors.DockerException, OSError) as exc:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, requests.ConnectionError):  # stopped, or restarting under the copy
            raise DeployError(
                f"Could not back up the data of {record.app} (the Docker engine stopped "
                "answering); nothing was changed.",
                "check that the engine runs (`docker info`); the next run tries again.",
            ) from None
        raise DeployError(
            f"Could not back up the data of {record.app} ({exc}); nothing was changed.",
            "check free disk space in the installation's home.",
        ) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return made


def needed(data_bytes: int) -> int:
    """About what a backup of `data_bytes` of volume data takes on disk: tar headers and
    padding, the dump the hooks write, the manifest. Only an estimate (a volume of many tiny
    files takes more): a copy that fills the disk anyway is removed and refused."""
    return data_bytes + data_bytes // 10 + MB


def check_space(app: str, folder: Path, data_bytes: int) -> None:
    """Refuse a backup that would not fit in `folder`'s filesystem before writing a byte:
    a disk filled to the last block breaks more than the backup (the engine, the journal)."""
    if shutil.disk_usage(folder).free < needed(data_bytes):
        raise _too_little_space(app, folder, data_bytes)


def _too_little_space(app: str, folder: Path, data_bytes: int) -> DeployError:
    free = shutil.disk_usage(folder).free
    return DeployError(
        f"Could not back up the data of {app}: the backup needs about "
        f"{-(-needed(data_bytes) // MB)} MB free in {folder}, which has {free // MB} MB; "
        "nothing was changed.",
        f"free space on the filesystem of {folder} (older backups: `commonshelf backups "
        f"{app}`), then run again.",
    )


def _written(work: Path) -> int:
    """Bytes of the volume copies already finished in a partial backup folder (gone: 0)."""
    with contextlib.suppress(OSError):
        return sum(path.stat().st_size for path in work.glob("*.tar"))
    return 0


def restore_volumes(
    deployer: Deployer, app: str, images: dict[str, str], runtime: Runtime, folder: Path
) -> Backup:
    """Put a backup's volume copies back (the app's stack must not be running)."""
    made = of_app(folder, app)
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
