"""Fixtures for tests that run a private installation (or a matrix rehearsal) next to the
machine's own, and helpers for tests that change a copy of a recipe.

Everything a test deploys lives in a namespace of its own (stack, network, volume and
secret names start with it), on a free loopback port, so it never meets the lead's demo
installation on port 80 nor another engineer's test run on the same engine.
"""

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

from commonshelf.catalogue.contract import ServiceImage
from commonshelf.ci import images, matrix
from commonshelf.ci.contract_for import runtime_for
from commonshelf.ci.pipeline import DemoInstallation
from commonshelf.ci.promote import pinned_compose
from commonshelf.ci.rehearsal import Deployable, PinnedProxy, Rehearsal, remove_namespace
from commonshelf.ci.stages import Shelf
from commonshelf.installation import swarm
from commonshelf.platform.loaders import COMPOSE, load_yaml_bytes
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import load_recipe

from ..conftest import free_port

APP = "custom-html"
STACK_LABEL = swarm.STACK_LABEL
TEST_REPOSITORY = "commonshelf/tests"  # registry repositories of images tests push


# ---- copies of recipes


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


# ---- talking to an installation's proxy


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


# ---- namespaces on the engine


def namespace_leftovers(client: docker.DockerClient, namespace: str) -> list[str]:
    """What still exists on the engine in `namespace`: services, containers, volumes,
    networks and secrets whose stack or name starts with it."""
    left = [
        f"service {s.name}"
        for s in client.services.list()
        if str(s.attrs["Spec"].get("Labels", {}).get(STACK_LABEL, "")).startswith(namespace)
    ]
    for container in client.containers.list(all=True, sparse=True):
        labels = container.attrs.get("Labels") or {}
        if str(labels.get(STACK_LABEL, "")).startswith(namespace):
            left.append(f"container {(container.attrs.get('Names') or ['?'])[0]}")
    left += [f"volume {v.name}" for v in client.volumes.list() if v.name.startswith(namespace)]
    left += [f"network {n.name}" for n in client.networks.list() if n.name.startswith(namespace)]
    left += [f"secret {s.name}" for s in client.secrets.list() if s.name.startswith(namespace)]
    return left


@pytest.fixture
def installation(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[DemoInstallation]:
    """A private installation (own namespace, proxy port, home); removed afterwards, data and
    secrets too."""
    demo = DemoInstallation(
        home=tmp_path / "agent", http_port=free_port(), namespace=f"cst{uuid.uuid4().hex[:6]}-"
    )
    yield demo
    remove_namespace(docker_client, demo.namespace)


# ---- the standard matrix's inputs, as CI makes them


@pytest.fixture(scope="session")
def ci(settings: Settings) -> Shelf:
    """CI's stages on the real checkout, for what the matrix needs: candidates pushed to the
    registry and pinned by digest, and the installation proxy (nothing is written to build/)."""
    return Shelf(settings)


@pytest.fixture(scope="session")
def pinned_proxy(ci: Shelf) -> PinnedProxy:
    return ci.proxy()


@pytest.fixture
def rehearsals(
    monkeypatch: pytest.MonkeyPatch, docker_client: docker.DockerClient
) -> Iterator[list[Rehearsal]]:
    """Every rehearsal installation the matrix opens during the test (on any thread), so the
    test can check that each left nothing behind; removed afterwards whatever happened."""
    made: list[Rehearsal] = []

    class Recorded(Rehearsal):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(matrix, "Rehearsal", Recorded)
    yield made
    for rehearsal in made:
        remove_namespace(docker_client, rehearsal.namespace)
        shutil.rmtree(rehearsal.home, ignore_errors=True)


def assert_rehearsals_gone(client: docker.DockerClient, made: list[Rehearsal]) -> None:
    """Each rehearsal removed its stacks, containers, volumes, network, secrets and home."""
    assert made, "the matrix opened no rehearsal installation"
    for rehearsal in made:
        assert rehearsal.namespace.startswith("csm-")
        left = namespace_leftovers(client, rehearsal.namespace)
        assert not left, f"rehearsal {rehearsal.namespace} left {left}"
        assert not rehearsal.home.exists(), f"rehearsal home {rehearsal.home} was kept"


def released_version(
    settings: Settings,
    client: docker.DockerClient,
    image: str,
    version: str = "0.9.0+1.22.1",
    folder: Path | None = None,
) -> Deployable:
    """custom-html (or the recipe at `folder`) as if `version` had been released: its image
    pushed to a test repository and pinned by digest, the contract the release writes, and
    the pinned compose file the release publishes."""
    recipe = load_recipe(folder or settings.recipes_dir / APP)
    repository = f"{TEST_REPOSITORY}/{recipe.name}-app"
    digest = images.push(client, image, settings.registry, repository, "released")
    pinned = f"{settings.registry}/{repository}@{digest}"
    runtime = runtime_for(recipe, {"app": ServiceImage(image=pinned, digest=digest)})
    compose = load_yaml_bytes(pinned_compose(recipe, {"app": pinned}), runtime.compose, COMPOSE)
    return Deployable(version, runtime, compose)


# ---- versions released without the matrix (for tests of the installation side)


def record_as_vetted(shelf: Shelf, recipe: Any) -> None:
    """Record the built recipe's tests as passed at the top level, so the release job
    publishes it. Stand-in for CI's own tests in tests whose subject is the installation
    (CI's gates have their own tests); the images, scan, signatures and deploys stay real."""
    from commonshelf.ci import evidence as gates
    from commonshelf.ci.levels import MAX_LEVEL

    evidence = shelf.evidence.load(recipe.name, recipe.version, recipe.content_hash())
    evidence.gates.test = gates.TestGate(
        passed=True,
        summary="recorded by the test",
        tests_passed=1,
        tests_failed=0,
        tests_skipped=0,
        seconds=0.0,
        level=MAX_LEVEL,
        max_level=MAX_LEVEL,
        min_level=MAX_LEVEL,
    )
    shelf.evidence.save(evidence)
    # the scan stays real (seconds, cached by image): the release publishes its SBOMs
    scanned = shelf.scan(recipe, force=True)
    assert scanned.passed, scanned.summary
