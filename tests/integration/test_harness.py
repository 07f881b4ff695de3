"""The harness on real containers: the recipe's own tests pass; an unhealthy stack shows logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from commonshelf.ci.containers import start_stack
from commonshelf.ci.plugin import ENV_IMAGES, ENV_RECIPE
from commonshelf.ci.reaper import LABEL_HOST, LABEL_PID, LABEL_RUN, RUN_ID, remove_leftovers
from commonshelf.ci.runner import run_recipe_tests
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import load_recipe

from .conftest import copy_of_recipe, edit_yaml, never_healthy

# Other test runs share the engine: what a test checks is scoped to the runs it started.
THIS_RUN = {"label": f"{LABEL_RUN}={RUN_ID}"}


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _of_ended_runs(client: docker.DockerClient, before: set[str]) -> list[str]:
    """Test containers on this host, new since `before`, of a run whose process has ended."""
    host = socket.gethostname()
    return [
        c.id
        for c in client.containers.list(all=True, sparse=True, filters={"label": LABEL_RUN})
        if c.id not in before
        and (c.attrs.get("Labels") or {}).get(LABEL_HOST) == host
        and not _alive((c.attrs.get("Labels") or {}).get(LABEL_PID, ""))
    ]


def test_recipe_tests_pass_and_are_counted(
    settings: Settings, recipe_image: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    recipe = load_recipe(settings.recipes_dir / "custom-html")
    before = {c.id for c in docker_client.containers.list(all=True, sparse=True)}
    run = run_recipe_tests(recipe, {"app": recipe_image}, tmp_path)
    assert run.ok, run.output
    written = sum(
        path.read_text().count("\ndef test_") for path in recipe.tests_dir.glob("test_*.py")
    )
    assert run.passed == written and run.failed == 0
    # the child run cleaned up after itself
    assert not _of_ended_runs(docker_client, before)


def test_unhealthy_stack_fails_with_the_container_logs(
    settings: Settings, recipe_image: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    folder = never_healthy(settings, tmp_path, timeout=20)
    with pytest.raises(AssertionError, match=r"not healthy within 20s: app \(unhealthy\)") as err:
        start_stack(load_recipe(folder), {"app": recipe_image}, docker_client)
    assert '"GET /nope HTTP/1.0" 404' in str(err.value)  # nginx's access log line
    assert not docker_client.containers.list(all=True, sparse=True, filters=THIS_RUN)
    assert not docker_client.volumes.list(filters=THIS_RUN)


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
        ids = {c.id for c in docker_client.containers.list(all=True, sparse=True)}
        assert container.id not in ids
        assert volume.name not in {v.name for v in docker_client.volumes.list()}
        assert network.id not in {n.id for n in docker_client.networks.list()}
        assert alive.name in {v.name for v in docker_client.volumes.list()}  # a live run's
    finally:
        alive.remove(force=True)


def _child_run(recipe_dir: Path, image: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    """The recipe's tests in a child pytest, as `invoke test` runs them."""
    env = dict(
        os.environ,
        **{ENV_RECIPE: str(recipe_dir), ENV_IMAGES: json.dumps({"app": image})},
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(recipe_dir / "tests"),
            "-p",
            "no:cacheprovider",
            "-c",
            os.devnull,
            f"--rootdir={recipe_dir}",
            "-q",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _containers_of(client: docker.DockerClient, pid: int) -> list[Any]:
    return client.containers.list(all=True, sparse=True, filters={"label": f"{LABEL_PID}={pid}"})


def _wait_for_a_container(client: docker.DockerClient, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not _containers_of(client, child.pid):
        assert child.poll() is None, "the test run ended before it started a container"
        assert time.monotonic() < deadline, "the test run started no container within 60s"
        time.sleep(0.2)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_an_interrupted_test_run_leaves_nothing_behind(
    settings: Settings,
    recipe_image: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    how: signal.Signals,
) -> None:
    """Ctrl-C: the run removes its own containers. A killed run cannot: the next run's
    start (remove_leftovers) removes what it left, because its process is gone."""
    child = _child_run(settings.recipes_dir / "custom-html", recipe_image, tmp_path)
    try:
        _wait_for_a_container(docker_client, child)
        child.send_signal(how)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if how == signal.SIGKILL:
        assert _containers_of(docker_client, child.pid), "a killed run cleans nothing up"
        remove_leftovers(docker_client)  # what every test session does first
    assert not _containers_of(docker_client, child.pid)
    for kind in (docker_client.volumes, docker_client.networks):
        assert not [
            item
            for item in kind.list(filters={"label": LABEL_PID})
            if (item.attrs.get("Labels") or {}).get(LABEL_PID) == str(child.pid)
        ]


def test_every_service_network_and_volume_of_the_compose_file_is_brought_up(
    settings: Settings, recipe_image: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    """A second service on a private network: the main service reaches it by name, the
    stack has both networks and both volumes, and stopping removes all of it."""
    folder = copy_of_recipe(settings, tmp_path)

    def two_networks(compose: dict[str, Any]) -> None:
        compose["services"]["app"]["networks"] = ["front", "back"]
        compose["services"]["store"] = {
            "image": recipe_image,
            "networks": ["back"],
            "volumes": ["blobs:/srv/www"],
        }
        compose["volumes"]["blobs"] = None
        compose["networks"] = {"front": None, "back": None}

    edit_yaml(folder / "compose.yml", two_networks)
    stack = start_stack(load_recipe(folder), {"app": recipe_image}, docker_client)
    try:
        assert set(stack.services) == {"app", "store"}
        assert set(stack.networks) == {"front", "back"} and set(stack.volumes) == {
            "content",
            "blobs",
        }
        assert "store" in stack.exec("getent hosts store")
        on_front = docker_client.networks.get(stack.networks["front"].id or "")
        assert {c.name for c in on_front.containers} == {
            stack.services["app"].docker_container.name
        }
    finally:
        stack.stop()
    assert not docker_client.containers.list(all=True, sparse=True, filters=THIS_RUN)
    assert not docker_client.networks.list(filters=THIS_RUN)
    assert not docker_client.volumes.list(filters=THIS_RUN)
