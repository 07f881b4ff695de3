"""A volume copied to a tar and restored into a new volume comes back as it was: its files, and
its own folder's owner and mode (an app running unprivileged writes at the top of its volume;
a restore that left the folder root's would break it)."""

from __future__ import annotations

import uuid
from pathlib import Path

import docker

from commonshelf.installation.volumes import archive_volume, restore_volume


def test_a_restored_volume_keeps_its_files_and_its_folders_owner(
    docker_client: docker.DockerClient, base_image: str, tmp_path: Path
) -> None:
    source, target = (f"cstest-volume-{uuid.uuid4().hex[:8]}-{n}" for n in ("a", "b"))
    for name in (source, target):
        docker_client.volumes.create(name)
    try:
        docker_client.containers.run(
            base_image,
            ["sh", "-c", "echo kept > /v/file && chown -R 1234:2345 /v && chmod 0750 /v"],
            volumes={source: {"bind": "/v", "mode": "rw"}},
            network_disabled=True,
            remove=True,
        )
        archive = tmp_path / "volume.tar"
        archive_volume(docker_client, base_image, source, archive)
        restore_volume(docker_client, base_image, target, archive)
        seen = docker_client.containers.run(
            base_image,
            ["sh", "-c", "stat -c '%u:%g %a' /v /v/file && cat /v/file"],
            volumes={target: {"bind": "/v", "mode": "ro"}},
            network_disabled=True,
            remove=True,
        )
        assert seen.decode().split("\n")[:3] == ["1234:2345 750", "1234:2345 644", "kept"]
    finally:
        for name in (source, target):
            docker_client.volumes.get(name).remove(force=True)
