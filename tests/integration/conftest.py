"""Fixtures for tests that run a private installation next to the machine's own, and helpers
for tests that change a copy of a recipe."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests
import yaml

from commonshelf.ci.pipeline import DemoInstallation
from commonshelf.installation import swarm
from commonshelf.platform.settings import Settings

from ..conftest import free_port

APP = "custom-html"


def copy_of_recipe(settings: Settings, tmp_path: Path, app: str = APP) -> Path:
    """A private shelf under `tmp_path` (recipes and shared); the folder of its `app`."""
    shutil.copytree(
        settings.recipes_dir, tmp_path / "recipes", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(settings.shared_dir, tmp_path / "shared")
    return tmp_path / "recipes" / app


def edit_yaml(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change a recipe's YAML file in place."""
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def never_healthy(settings: Settings, tmp_path: Path, timeout: int) -> Path:
    """A copy of custom-html whose healthcheck asks for a missing page: it never gets healthy,
    and nginx logs each probe. Gives up after `timeout` seconds."""
    folder = copy_of_recipe(settings, tmp_path)
    edit_yaml(
        folder / "compose.yml",
        lambda c: c["services"]["app"]["healthcheck"].update(
            test=["CMD", "http-health", "8080", "/nope"]
        ),
    )
    edit_yaml(folder / "recipe.yml", lambda m: m["main"].update(timeout=timeout))
    return folder


def get_app(port: int, host: str, path: str = "/") -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host}, timeout=10)


def wait_for_page(port: int, host: str, text: str, timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            page = get_app(port, host)
            if page.status_code == 200 and text in page.text:
                return page
            last = page.status_code
        except requests.RequestException as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"{host} did not serve '{text}' on port {port}: {last}")


@pytest.fixture
def installation(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[DemoInstallation]:
    """A private installation (own namespace, proxy port, home); removed afterwards, data too."""
    demo = DemoInstallation(
        home=tmp_path / "agent", http_port=free_port(), namespace=f"cst{uuid.uuid4().hex[:6]}-"
    )
    yield demo
    stacks = [f"{demo.namespace}{APP}", f"{demo.namespace}commonshelf"]
    for stack in stacks:
        swarm.remove(stack)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and docker_client.containers.list(
        all=True, sparse=True, filters={"label": f"com.docker.stack.namespace={stacks[0]}"}
    ) + docker_client.containers.list(
        all=True, sparse=True, filters={"label": f"com.docker.stack.namespace={stacks[1]}"}
    ):
        time.sleep(1)
    for volume in docker_client.volumes.list(filters={"name": demo.namespace}):
        volume.remove(force=True)
    for network in docker_client.networks.list(names=[f"{demo.namespace}commonshelf-apps"]):
        for _ in range(20):
            try:
                network.remove()
                break
            except docker.errors.APIError:
                time.sleep(1)
