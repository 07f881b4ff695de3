"""Copy a named volume to a tar file and back, through the engine's archive API.

A created (never started) container of an image already on the node mounts
the volume; nothing is pulled. The one thing run is a `chown`/`chmod` of the
restored volume's own folder, which the engine's archive API leaves root's.
Used for the agent's snapshots before updates and for the backup/restore check
of the test matrix.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import docker

MOUNT = "/commonshelf-volume"


def archive_volume(client: docker.DockerClient, image: str, volume: str, out: Path) -> None:
    """Write every file of `volume` to the tar file `out` (paths start with './')."""
    holder = client.containers.create(
        image,
        ["true"],
        entrypoint=[],
        network_disabled=True,
        volumes={volume: {"bind": MOUNT, "mode": "ro"}},
    )
    try:
        stream, _ = holder.get_archive(f"{MOUNT}/.")
        with out.open("wb") as handle:
            for chunk in stream:
                handle.write(chunk)
    finally:
        holder.remove(force=True)


def restore_volume(client: docker.DockerClient, image: str, volume: str, archive: Path) -> None:
    """Unpack a tar written by `archive_volume` into `volume`."""
    holder = client.containers.create(
        image,
        ["true"],
        entrypoint=[],
        network_disabled=True,
        volumes={volume: {"bind": MOUNT, "mode": "rw"}},
    )
    try:
        if not holder.put_archive(MOUNT, archive.read_bytes()):
            raise OSError(f"the engine refused to restore {archive} into {volume}")
    finally:
        holder.remove(force=True)
    top = _top_directory(archive)
    if top is not None:  # the engine unpacks into the mount point but keeps it root's, 0755
        uid, gid, mode = top
        client.containers.run(
            image,
            ["sh", "-c", f"chown {uid}:{gid} {MOUNT} && chmod {mode:o} {MOUNT}"],
            entrypoint=[],
            user="0:0",
            network_disabled=True,
            volumes={volume: {"bind": MOUNT, "mode": "rw"}},
            remove=True,
        )


def _top_directory(archive: Path) -> tuple[int, int, int] | None:
    """Owner, group and mode of the volume's own folder in the archive (its `./` entry): an
    app running unprivileged writes there, so a restore must give the folder back as it was."""
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isdir() and member.name.rstrip("/") in (".", ""):
                return member.uid, member.gid, member.mode & 0o7777
            return None
    return None
