"""The `commonshelf` pytest plugin: the fixtures every recipe's tests/ folder gets.

`recipe`, `recipe_images` and `app` (the whole stack up and healthy, main port
published on 127.0.0.1). Registered through the `commonshelf.harness` entry point.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from commonshelf.ci.containers import RunningStack, start_stack
from commonshelf.ci.reaper import RUN_ID, remove_leftovers
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.loaders import VARIABLE, load_json_bytes
from commonshelf.recipes.model import Recipe, load_recipe

ENV_RECIPE = "COMMONSHELF_RECIPE_DIR"
ENV_IMAGES = "COMMONSHELF_IMAGES"


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_client_key] = None


_client_key = pytest.StashKey[docker.DockerClient | None]()


def _client(config: pytest.Config) -> docker.DockerClient:
    client = config.stash.get(_client_key, None)
    if client is None:
        from commonshelf.platform.environment import ensure
        from commonshelf.platform.settings import Settings

        client = ensure(Settings.load(), registry=False, swarm=False).client
        remove_leftovers(client)
        config.stash[_client_key] = client
    return client


def pytest_sessionfinish(session: pytest.Session) -> None:
    client = session.config.stash.get(_client_key, None)
    if client is not None:
        remove_leftovers(client, RUN_ID)


@pytest.fixture(scope="module")
def recipe(request: pytest.FixtureRequest) -> Recipe:
    """The recipe under test: $COMMONSHELF_RECIPE_DIR, else the folder above this tests/ folder."""
    folder = os.environ.get(ENV_RECIPE)
    path = Path(folder) if folder else Path(str(request.path)).resolve().parent.parent
    return load_recipe(path)


@pytest.fixture(scope="module")
def recipe_images(request: pytest.FixtureRequest, recipe: Recipe) -> dict[str, str]:
    """Service -> local image: $COMMONSHELF_IMAGES (set by `invoke test`), else built now."""
    given = os.environ.get(ENV_IMAGES)
    if given:
        return given_images(given)
    from commonshelf.ci.images import build_recipe, ensure_base_image
    from commonshelf.platform.settings import Settings
    from commonshelf.platform.vcs import revision, source_url

    client = _client(request.config)
    settings = Settings.load()
    base = ensure_base_image(client, settings)
    built = build_recipe(
        client, recipe, base.tag, revision=revision(settings.root), source=source_url(settings.root)
    )
    return {service: image.ref for service, image in built.items()}


def given_images(value: str) -> dict[str, str]:
    """$COMMONSHELF_IMAGES read bounded: a JSON object of service -> local image."""
    images = load_json_bytes(os.fsencode(value), f"${ENV_IMAGES}", VARIABLE)
    if not isinstance(images, dict) or not all(isinstance(v, str) for v in images.values()):
        raise CommonshelfError(
            f"${ENV_IMAGES} is not a JSON object of service names to image references.",
            f"unset {ENV_IMAGES} to build the images, or set it as `invoke test` does: "
            f"{json.dumps({'app': 'commonshelf/app:tag'})}.",
        )
    return images


@pytest.fixture(scope="module")
def app(
    request: pytest.FixtureRequest, recipe: Recipe, recipe_images: dict[str, str]
) -> Iterator[RunningStack]:
    """The recipe's whole stack, healthy, for the tests of one module."""
    stack = start_stack(recipe, recipe_images, _client(request.config))
    try:
        yield stack
    finally:
        stack.stop()
