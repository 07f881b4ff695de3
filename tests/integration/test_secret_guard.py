"""An installation refuses to deploy with a secret that is not the one it generated: a secret
file emptied or mangled, or a Swarm secret holding another value than the file. One line says
which file, and nothing is deployed (an app started with the wrong database password would fail,
or worse, start half-configured)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import msgspec
import pytest

from commonshelf.catalogue.contract import SecretSpec
from commonshelf.ci.rehearsal import Deployable, PinnedProxy, Rehearsal, remove_namespace
from commonshelf.platform.errors import DeployError
from commonshelf.platform.settings import Settings

from .conftest import APP, released_version

SECRET = "db_password"


@pytest.fixture
def rehearsal(docker_client: docker.DockerClient, pinned_proxy: PinnedProxy) -> Iterator[Rehearsal]:
    made = Rehearsal(docker_client, "secretguard", pinned_proxy)
    try:
        yield made
    finally:
        remove_namespace(docker_client, made.namespace)
        made.close()


def _with_secret(version: Deployable) -> Deployable:
    runtime = msgspec.structs.replace(
        version.runtime, secrets={SECRET: SecretSpec(description="the database password")}
    )
    compose = dict(version.compose)
    compose["services"] = {"app": {**compose["services"]["app"], "secrets": [SECRET]}}
    compose["secrets"] = {SECRET: {"external": True}}
    return Deployable(version.version, runtime, compose)


def test_a_mangled_or_mismatched_secret_stops_the_deploy(
    settings: Settings,
    docker_client: docker.DockerClient,
    recipe_image: str,
    rehearsal: Rehearsal,
) -> None:
    version = _with_secret(released_version(settings, docker_client, recipe_image))
    deployer = rehearsal.deployer
    rehearsal.ensure_proxy()
    deployer.deploy_app(APP, version.version, version.runtime, version.compose)
    stack = deployer.config.stack(APP)
    service = docker_client.services.get(f"{stack}_app")
    path: Path = rehearsal.home / "secrets" / APP / SECRET
    good = path.read_bytes()
    assert len(good) == 32 and good.isalnum()

    path.write_bytes(b"")  # emptied (a full disk, a careless edit)
    with pytest.raises(DeployError, match=rf"{path}: the secret {SECRET} of {APP} is not"):
        deployer.deploy_app(APP, version.version, version.runtime, version.compose)
    path.write_bytes(b"x" * 40)  # another value than the one Swarm was handed
    with pytest.raises(DeployError, match=rf"Swarm secret {stack}_{SECRET} holds another value"):
        deployer.deploy_app(APP, version.version, version.runtime, version.compose)
    service.reload()
    assert docker_client.services.get(f"{stack}_app").version == service.version  # untouched

    path.write_bytes(good)  # the right value back: deploys again
    deployer.deploy_app(APP, version.version, version.runtime, version.compose)
