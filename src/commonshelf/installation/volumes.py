"""Copy a named volume to a tar file and back, through the engine's archive API.

A created (never started) container of an image already on the node mounts
the volume; nothing is pulled. The one thing run is a `chown`/`chmod` of the
restored volume's own folder, which the engine's archive API leaves root's.
Each such holder container is labelled with its volume, so one left behind by an
agent that was killed (or an engine that restarted) mid-copy is removed by the next
run (`remove_holders`): it would keep the volume busy.
Used for the agent's snapshots before updates and for the backup/restore check
of the test matrix.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tarfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import docker
import docker.errors

from commonshelf.platform.fsutil import write_bytes_atomic

MOUNT = "/commonshelf-volume"
HOLDER_LABEL = "org.commonshelf.volume-holder"  # value: the volume the container mounts
PAUSE_AT = "COMMONSHELF_PAUSE_AT"


class NoSpace(OSError):
    """The disk filled while a volume was copied; `size` is the whole copy's size."""

    def __init__(self, path: Path, size: int) -> None:
        super().__init__(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        self.size = size


def pause_point(step: str) -> None:
    """Test-only fault injection (tests/faults): with COMMONSHELF_PAUSE_AT=STEP:MARKER in the
    environment, the agent writes its pid to the file MARKER when it reaches STEP and waits
    until that file is removed (at most 10 minutes), so a test can SIGKILL it, or restart
    the engine under it, at that exact moment. Steps: `backup` (a volume's copy is
    half-written into a `.partial` backup folder, its holder container exists and its
    archive stream is open). Unset (always, outside tests): nothing happens."""
    wanted, _, marker = os.environ.get(PAUSE_AT, "").partition(":")
    if wanted != step or not marker:
        return
    write_bytes_atomic(Path(marker), f"{os.getpid()}\n".encode())
    deadline = time.monotonic() + 600
    while Path(marker).exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def _holder(client: docker.DockerClient, image: str, volume: str, mode: str) -> Any:
    """A created (never started) container that mounts `volume` at MOUNT."""
    return client.containers.create(
        image,
        ["true"],
        entrypoint=[],
        network_disabled=True,
        labels={HOLDER_LABEL: volume},
        volumes={volume: {"bind": MOUNT, "mode": mode}},
    )


def archive_volume(client: docker.DockerClient, image: str, volume: str, out: Path) -> int:
    """Write every file of `volume` to the tar file `out` (paths start with './'); its size.
    A full disk raises NoSpace with the size the whole copy needed."""
    holder = _holder(client, image, volume, "ro")
    size = 0
    try:
        stream, _ = holder.get_archive(f"{MOUNT}/.")
        try:
            with out.open("wb") as handle:
                for chunk in stream:
                    handle.write(chunk)
                    size += len(chunk)
                    if size == len(chunk):
                        pause_point("backup")
                handle.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            out.unlink(missing_ok=True)
            for chunk in stream:  # measure what the copy needs, writing nothing more
                size += len(chunk)
            raise NoSpace(out, size) from None
    finally:
        holder.remove(force=True)
    return size


def restore_volume(client: docker.DockerClient, image: str, volume: str, archive: Path) -> None:
    """Unpack a tar written by `archive_volume` into `volume`."""
    holder = _holder(client, image, volume, "rw")
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
            labels={HOLDER_LABEL: volume},
            volumes={volume: {"bind": MOUNT, "mode": "rw"}},
            remove=True,
        )


def remove_holders(client: docker.DockerClient, volumes: Iterable[str]) -> int:
    """Remove the holder containers of `volumes` left by a copy that never finished (the
    caller holds the installation's lock, so none of them is in use); how many."""
    wanted = set(volumes)
    removed = 0
    # sparse: inspecting a container whose archive is being read waits for the copy to end
    found = client.containers.list(all=True, sparse=True, filters={"label": HOLDER_LABEL})
    for container in found:
        if (container.attrs.get("Labels") or {}).get(HOLDER_LABEL) in wanted:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
                removed += 1
    return removed


def volume_sizes(client: docker.DockerClient, volumes: Iterable[str]) -> dict[str, int]:
    """The bytes each of `volumes` holds, as the engine counts them (`docker system df`);
    a volume the engine did not measure is left out."""
    wanted = set(volumes)
    sizes = {}
    for entry in client.df().get("Volumes") or []:
        size = int((entry.get("UsageData") or {}).get("Size", -1))
        if entry.get("Name") in wanted and size >= 0:
            sizes[str(entry["Name"])] = size
    return sizes


def _top_directory(archive: Path) -> tuple[int, int, int] | None:
    """Owner, group and mode of the volume's own folder in the archive (its `./` entry): an
    app running unprivileged writes there, so a restore must give the folder back as it was."""
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isdir() and member.name.rstrip("/") in (".", ""):
                return member.uid, member.gid, member.mode & 0o7777
            return None
    return None
