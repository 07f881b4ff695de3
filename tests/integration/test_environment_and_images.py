"""Bring-up is idempotent, the base image is content-addressed, and a dead registry is named."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from commonshelf.ci import images
from commonshelf.platform import environment
from commonshelf.platform.errors import BuildError, EnvironmentNotReady, ReleaseError
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import load_recipe

from ..conftest import free_port


def test_bring_up_is_idempotent_and_fast_when_up(
    settings: Settings, env: environment.Environment
) -> None:
    started = time.monotonic()
    again = environment.ensure(settings)
    assert time.monotonic() - started < 10
    assert again.client.info()["Swarm"]["LocalNodeState"] == "active"
    assert environment.registry_answers(settings.registry)


def test_remote_registry_that_does_not_answer_is_named(settings: Settings) -> None:
    remote = Settings(
        root=settings.root,
        state_dir=settings.state_dir,
        registry="registry.invalid:5000",
        catalogue_port=0,
        debian_mirror=settings.debian_mirror,
    )
    with pytest.raises(EnvironmentNotReady, match=r"registry\.invalid:5000 does not answer"):
        environment.ensure_registry(remote)


def test_base_image_is_reused_and_labelled(
    docker_client: docker.DockerClient, settings: Settings, base_image: str
) -> None:
    again = images.ensure_base_image(docker_client, settings)
    assert again.tag == base_image and not again.built
    image = docker_client.images.get(base_image)
    assert image.labels["dev.commonshelf.base"] == base_image
    out = docker_client.containers.run(
        base_image,
        ["bash", "-c", "cat /etc/debian_version; ls /etc/apt/sources.list.d"],
        remove=True,
        network_disabled=True,
    ).decode()
    assert out.startswith("12.") and "debian.sources" in out


def test_recipe_image_has_oci_labels_and_is_skipped_when_unchanged(
    docker_client: docker.DockerClient,
    settings: Settings,
    base_image: str,
    recipe_image: str,
) -> None:
    recipe = load_recipe(settings.recipes_dir / "custom-html")
    again = images.build_recipe(docker_client, recipe, base_image, revision="r", source="s")
    assert again["app"].ref == recipe_image and not again["app"].built
    labels = docker_client.images.get(recipe_image).labels
    assert labels["org.opencontainers.image.version"] == recipe.version
    assert labels["dev.commonshelf.content-hash"] == recipe.content_hash()
    assert {"org.opencontainers.image.source", "org.opencontainers.image.revision"} <= set(labels)


def test_broken_dockerfile_is_a_build_error_naming_the_file(
    docker_client: docker.DockerClient,
    tmp_path: Path,
    base_image: str,
) -> None:
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN exit 3\n")
    with pytest.raises(BuildError, match=r"Dockerfile: build failed"):
        images.build_context(
            docker_client,
            tmp_path,
            repository="commonshelf/broken-test",
            key="x",
            base_tag=base_image,
            labels={},
            fix="fix it",
        )


def test_dead_registry_is_a_clear_release_error(
    docker_client: docker.DockerClient, recipe_image: str
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with pytest.raises(ReleaseError, match=rf"{dead}"):
        images.push(docker_client, recipe_image, dead, "commonshelf/custom-html-app", "dead")
    docker_client.images.remove(f"{dead}/commonshelf/custom-html-app:dead", noprune=True)
