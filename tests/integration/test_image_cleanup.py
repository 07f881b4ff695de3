"""Old images really leave the engine: pulled by digest from the project's registry as an
installation pulls them, the unused one is removed, while one a container still uses (a
stopped Swarm task, say) and one that is needed stay; nothing is forced."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from commonshelf.ci import images
from commonshelf.installation.image_cleanup import remove_images
from commonshelf.platform.settings import Settings

LABEL = "io.commonshelf.test.image-cleanup"


@pytest.fixture
def pulled(
    docker_client: docker.DockerClient, settings: Settings, base_image: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """Three tiny images pushed to the registry and pulled back by digest only (no tag), as
    an installation's engine holds them: name -> `REGISTRY/REPO@sha256:…`."""
    repository = f"commonshelf-test/cleanup-{uuid.uuid4().hex[:8]}"
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    refs: dict[str, str] = {}
    try:
        for name in ("needed", "unused", "in-use"):
            local = f"{repository}:{name}"
            docker_client.images.build(
                path=str(tmp_path),
                tag=local,
                buildargs={"BASE_IMAGE": base_image},
                labels={LABEL: name},
                pull=False,
                rm=True,
            )
            digest = images.push(docker_client, local, settings.registry, repository, name)
            refs[name] = f"{settings.registry}/{repository}@{digest}"
            docker_client.images.remove(local)
            docker_client.images.remove(f"{settings.registry}/{repository}:{name}")
            docker_client.images.pull(refs[name])
        yield refs
    finally:
        for container in docker_client.containers.list(all=True, filters={"label": LABEL}):
            container.remove(force=True)
        for ref in refs.values():
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(ref)
            manifest = ref.replace("/", "/v2/", 1).replace("@", "/manifests/", 1)
            with contextlib.suppress(requests.RequestException):
                requests.delete(f"http://{manifest}", timeout=10)


def test_the_unused_image_goes_and_one_in_use_stays(
    docker_client: docker.DockerClient, pulled: dict[str, str]
) -> None:
    stopped = docker_client.containers.create(pulled["in-use"], ["true"], labels={LABEL: "task"})
    assert remove_images(docker_client, [pulled["unused"], pulled["in-use"]]) == [pulled["unused"]]
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(pulled["unused"])
    assert docker_client.images.get(pulled["in-use"]).labels[LABEL] == "in-use"
    assert docker_client.images.get(pulled["needed"]).labels[LABEL] == "needed"
    # once its container is gone, a later run removes it; one already gone is no error
    stopped.remove()
    assert remove_images(docker_client, [pulled["in-use"], pulled["unused"]]) == [pulled["in-use"]]
