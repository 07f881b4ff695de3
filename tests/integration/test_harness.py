"""The harness on real containers: the recipe's own tests pass; an unhealthy stack shows logs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import docker
import pytest
import yaml

from commonshelf.harness import (
    LABEL_HOST,
    LABEL_PID,
    LABEL_RUN,
    remove_leftovers,
    run_recipe_tests,
    start_stack,
)
from commonshelf.recipe import load_recipe
from commonshelf.settings import Settings


def test_recipe_tests_pass_and_are_counted(
    settings: Settings, recipe_image: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    recipe = load_recipe(settings.recipes_dir / "custom-html")
    run = run_recipe_tests(recipe, {"app": recipe_image}, tmp_path)
    assert run.ok, run.output
    assert run.passed == 5 and run.failed == 0
    # the child run cleaned up after itself
    assert not docker_client.containers.list(all=True, filters={"label": LABEL_RUN})


def test_unhealthy_stack_fails_with_the_container_logs(
    settings: Settings, recipe_image: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    shutil.copytree(settings.recipes_dir, tmp_path / "recipes")
    shutil.copytree(settings.shared_dir, tmp_path / "shared")
    folder = tmp_path / "recipes" / "custom-html"
    compose = yaml.safe_load((folder / "compose.yml").read_text())
    compose["services"]["app"]["healthcheck"]["test"] = ["CMD", "http-health", "8080", "/nope"]
    (folder / "compose.yml").write_text(yaml.safe_dump(compose))
    manifest = yaml.safe_load((folder / "recipe.yml").read_text())
    manifest["main"]["timeout"] = 20
    (folder / "recipe.yml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(AssertionError, match=r"not healthy within 20s: app \(unhealthy\)") as err:
        start_stack(load_recipe(folder), {"app": recipe_image}, docker_client)
    assert '"GET /nope HTTP/1.0" 404' in str(err.value)  # nginx's access log line
    assert not docker_client.containers.list(all=True, filters={"label": LABEL_RUN})


def test_leftovers_of_a_dead_run_are_removed(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    """What an interrupted run left behind (its process is gone) goes at the next start."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    labels = {
        LABEL_RUN: "interrupted-run",
        LABEL_PID: str(dead.pid),
        LABEL_HOST: socket.gethostname(),
    }
    container = docker_client.containers.create(base_image, ["sleep", "60"], labels=labels)
    volume = docker_client.volumes.create("cstest-interrupted-volume", labels=labels)
    network = docker_client.networks.create("cstest-interrupted-net", labels=labels)
    alive = docker_client.volumes.create(
        "cstest-live-volume", labels={**labels, LABEL_PID: str(os.getpid())}
    )
    try:
        assert remove_leftovers(docker_client) >= 3
        ids = {c.id for c in docker_client.containers.list(all=True)}
        assert container.id not in ids
        assert volume.name not in {v.name for v in docker_client.volumes.list()}
        assert network.id not in {n.id for n in docker_client.networks.list()}
        assert alive.name in {v.name for v in docker_client.volumes.list()}  # a live run's
    finally:
        alive.remove(force=True)
