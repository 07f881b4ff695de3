"""A validly signed compose file that mounts the engine's socket passes TUF verification and is
still refused before `docker stack deploy`: real signatures over real HTTP on loopback, the
installation's Subscription, the agent's loader and renderer, and the real Swarm, which ends
up with no service of the hostile app (while the same path deploys a harmless one)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import MainService, Runtime, ServiceImage, VersionEntry, Vetting
from commonshelf.catalogue.server import serving
from commonshelf.catalogue.signing import Publisher, load_or_create_keys
from commonshelf.ci.rehearsal import remove_namespace
from commonshelf.installation import swarm
from commonshelf.installation.agent import Agent
from commonshelf.installation.deployer import Deployer
from commonshelf.installation.guard import HostControlError
from commonshelf.installation.state import InstallationConfig, write_record
from commonshelf.installation.subscription import Subscription
from commonshelf.platform.loaders import COMPOSE, load_yaml_bytes

DIGEST = "sha256:" + "c" * 64
IMAGE = f"127.0.0.1:5000/commonshelf/tests@{DIGEST}"  # never pulled: no service has replicas
VERSION = "1.0.0+1"


def _compose(volumes: list[str]) -> bytes:
    """A one-service stack with no replicas: even a broken guard would start no container."""
    service = {"image": IMAGE, "volumes": volumes, "deploy": {"replicas": 0}}
    return yaml.safe_dump({"services": {"app": service}, "volumes": {"data": None}}).encode()


HOSTILE = _compose(["data:/srv", "/var/run/docker.sock:/var/run/docker.sock"])
BENIGN = _compose(["data:/srv"])


def _target(app: str) -> str:
    return f"apps/{app}/{VERSION}/compose.yml"


def _catalog() -> bytes:
    catalog = Catalog(generated="2026-01-01T00:00:00Z", commit="c" * 40)
    for app in ("hostile", "benign"):
        runtime = Runtime(
            compose=_target(app),
            services={"app": ServiceImage(image=IMAGE, digest=DIGEST)},
            main=MainService(service="app", port=8080, health="/"),
        )
        entry = VersionEntry(
            released="2026-01-01T00:00:00Z",
            commit="c" * 40,
            content_hash="h" * 64,
            runtime=runtime,
            vetting=Vetting(level=7),
        )
        catalog.add_version(app, app.title(), "a test app", "test", VERSION, entry)
    return catalog.to_bytes()


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """The catalogue and both compose files, signed and served on loopback: (url, root)."""
    public = tmp_path / "public"
    keys = load_or_create_keys(tmp_path / "keys", env={})[0]
    Publisher(public, keys).publish(
        {"catalog.json": _catalog(), _target("hostile"): HOSTILE, _target("benign"): BENIGN}
    )
    with serving(public) as url:
        yield (
            url,
            (public / "metadata" / "1.root.json").read_bytes(),
        )


@pytest.fixture
def namespace(docker_client: docker.DockerClient) -> Iterator[str]:
    name = f"csg{uuid.uuid4().hex[:6]}-"
    yield name
    remove_namespace(docker_client, name)


def _deploy_checked(
    client: docker.DockerClient, home: Path, config: InstallationConfig, app: str, sub: Subscription
) -> dict[str, Any]:
    """What the deployer does with a verified version: read the signed catalogue and compose
    file, render, check, and only then `docker stack deploy`."""
    _, entry = Catalog.from_bytes(sub.fetch("catalog.json")).version(app, VERSION)
    compose = load_yaml_bytes(sub.fetch(entry.runtime.compose), entry.runtime.compose, COMPOSE)
    rendered = Deployer(client, home, config).render(app, entry.runtime, compose)
    path = home / "stacks" / f"{config.stack(app)}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(rendered, sort_keys=False))
    swarm.ensure_network(client, config.network)
    swarm.deploy(config.stack(app), path)
    return rendered


def _services(client: docker.DockerClient, namespace: str) -> list[str]:
    return sorted(s.name for s in client.services.list() if s.name.startswith(namespace))


def test_a_signed_compose_mounting_the_engine_socket_is_refused_after_verification(
    repository: tuple[str, bytes],
    namespace: str,
    tmp_path: Path,
    docker_client: docker.DockerClient,
) -> None:
    url, root = repository
    home = tmp_path / "agent"
    home.mkdir()
    sub = Subscription.create(home / "tuf", url, root, verify=True)
    config = InstallationConfig(repository=url, namespace=namespace, http_port=1)

    # the hostile file is what was signed: TUF verifies it (a bad signature or hash would
    # raise TrustError here) and the installation keeps the verified copy
    assert sub.fetch(_target("hostile")) == HOSTILE
    assert (home / "tuf" / "targets" / _target("hostile")).read_bytes() == HOSTILE

    # the agent's own `install`, as an operator runs it, refuses it before any change
    write_record(home / "config.json", config)
    with pytest.raises(HostControlError) as refused:
        Agent(home, docker_client).install("hostile")
    assert refused.value.what == (
        "catalog app hostile, service 'app': mounts the host path /var/run/docker.sock "
        "(volumes[1]); refusing to deploy it; nothing was changed."
    )
    assert "Fix: the catalogue's publisher must remove that setting" in str(refused.value)
    assert not (home / "stacks" / f"{config.stack('hostile')}.yml").exists()
    assert not (home / "apps").exists() and not (home / "secrets").exists()
    assert swarm.stack_services(docker_client, config.stack("hostile")) == []

    # the same path deploys a harmless version of the same shape: the refusal is the guard's
    _deploy_checked(docker_client, home, config, "benign", sub)
    assert _services(docker_client, namespace) == [f"{namespace}benign_app"]
    [benign] = swarm.stack_services(docker_client, config.stack("benign"))
    mounts = benign.attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Mounts", [])
    assert [m["Type"] for m in mounts] == ["volume"]
