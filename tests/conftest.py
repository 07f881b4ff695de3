"""Session fixtures: the real engine, registry and Swarm, brought up once by the library itself."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from commonshelf.ci import images
from commonshelf.platform import environment
from commonshelf.platform.proc import run
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import load_recipe

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


def debian_command(command: str, package: str | None = None) -> str:
    """`command`'s path, installing its Debian package first when it is missing (as root,
    the way `./shelf` installs what it needs on a fresh machine)."""
    found = shutil.which(command)
    if found:
        return found
    package = package or command
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{command} is missing. Fix: run `apt-get install -y {package}` as root.")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        run(argv, fix=f"check Debian mirror access, then `apt-get install -y {package}`.", env=env)
    return shutil.which(command) or pytest.fail(f"apt-get installed no `{command}` command.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The real checkout's settings (shared state dir: engine, registry, trivy cache)."""
    return Settings.load(REPO)


@pytest.fixture(scope="session")
def env(settings: Settings) -> environment.Environment:
    return environment.ensure(settings)


@pytest.fixture(scope="session")
def docker_client(env: environment.Environment) -> docker.DockerClient:
    return env.client


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient, settings: Settings) -> str:
    return images.ensure_base_image(docker_client, settings).tag


@pytest.fixture(scope="session")
def recipe_image(docker_client: docker.DockerClient, settings: Settings, base_image: str) -> str:
    """custom-html's image: Debian's nginx-light on the project's base image."""
    recipe = load_recipe(settings.recipes_dir / "custom-html")
    built = images.build_recipe(docker_client, recipe, base_image, revision="test", source="test")
    return built["app"].ref


@pytest.fixture
def workspace(tmp_path: Path, settings: Settings) -> Iterator[Settings]:
    """A private shelf (shared/ and custom-html; own keys and public/) on the real engine."""
    root = tmp_path / "shelf"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
    shutil.copytree(REPO / "shared", root / "shared", ignore=ignore)
    # custom-html alone: the tooling's tests need one quick real app, not the whole shelf
    shutil.copytree(
        REPO / "recipes" / "custom-html", root / "recipes" / "custom-html", ignore=ignore
    )
    (root / "pyproject.toml").write_text("[project]\nname = 'shelf-under-test'\n")
    yield from shelf_at(root, settings)


def shelf_at(root: Path, settings: Settings) -> Iterator[Settings]:
    """Settings for the shelf at `root` on the machine's engine, registry and trivy cache,
    with its own catalogue port; its catalogue server is stopped afterwards."""
    shelf = Settings(
        root=root,
        state_dir=settings.state_dir,
        registry=settings.registry,
        catalogue_port=free_port(),
        debian_mirror=settings.debian_mirror,
    )
    yield shelf
    environment.stop_daemon(shelf, f"catalogue-{shelf.catalogue_port}")
