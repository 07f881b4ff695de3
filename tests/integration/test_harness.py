"""The harness on real containers: the recipe's own tests pass; an unhealthy stack shows logs."""

from __future__ import annotations

import shutil
from pathlib import Path

import docker
import pytest
import yaml

from commonshelf.harness import LABEL_RUN, run_recipe_tests, start_stack
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
