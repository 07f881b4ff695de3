"""Copy a named volume to a tar file and back, through the engine's archive API.

A created (never started) container of an image already on the node mounts
the volume; nothing runs and nothing is pulled. Used for the agent's snapshots
before updates and for the backup/restore check of the test matrix.
"""

from __future__ import annotations

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
