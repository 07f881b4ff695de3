"""More than one machine: on a two-node Swarm, the services that hold data run on the node the
agent drives (so its backups, which read volumes through that node's engine, find them) and
stateless services spread to the other node.

The two nodes are engines in containers built on the project's base image (Debian's
docker.io), forming a Swarm of their own: a worker joined to the machine's shared Swarm would
attract every other test's new tasks while it is there. The agent's code drives the manager
through its socket (`render_app`, `swarm.deploy`, `swarm.wait_converged`, `archive_volume`).
The nodes pull the pinned image from the project's registry as every node of an installation
does: `127.0.0.1:5000` inside each node is relayed to the registry on this host's loopback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import yaml

from commonshelf.catalogue.contract import DataVolume, MainService, Runtime, ServiceImage
from commonshelf.ci import images
from commonshelf.installation import swarm
from commonshelf.installation.render import render_app
from commonshelf.installation.state import InstallationConfig
from commonshelf.installation.volumes import archive_volume
from commonshelf.platform.settings import Settings
from commonshelf.platform.wait import poll

NODE_IMAGE = "commonshelf/tests-swarm-node"
LABEL = "dev.commonshelf.test.multinode"  # value: the pid of the test run that made it
REGISTRY_REPOSITORY = "commonshelf/tests/multinode-base"

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      docker.io iptables socat \\
 && rm -rf /var/lib/apt/lists/*
COPY start.sh /usr/local/bin/start-node
ENTRYPOINT ["/usr/local/bin/start-node"]
"""

# This host's engine lacks CAP_SYS_RESOURCE, so `--privileged` cannot start a container: the
# node gets every other capability and makes its cgroup mounts writable itself.
START = """\
#!/bin/sh
set -e
for m in $(awk '$3 == "cgroup" {print $2}' /proc/mounts); do mount -o remount,bind,rw "$m"; done
socat TCP-LISTEN:5000,bind=127.0.0.1,fork,reuseaddr "TCP:$RELAY" &
exec dockerd --host unix:///var/run/docker.sock --storage-driver overlay2 "$@"
"""


class Relay:
    """Forward connections from `listen` (an address the nodes reach: the bridge's gateway)
    to `target` on this host's loopback, until closed."""

    def __init__(self, listen_host: str, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server((listen_host, 0))
        self.address = f"{listen_host}:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.server.accept()
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


@dataclass
class TwoNodes:
    manager: docker.DockerClient  # the engine the agent drives
    socket: Path
    manager_id: str
    worker_id: str
    worker: Any  # the worker node's container on this host
    image: str  # pinned by digest in the project's registry


def _remove_leftovers(client: docker.DockerClient) -> None:
    """Nodes of earlier runs whose process is gone (a crash, a Ctrl-C twice)."""
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        pid = int(container.labels.get(LABEL, "0") or 0)
        alive = pid > 0 and Path(f"/proc/{pid}").exists()
        if not alive or pid == os.getpid():
            container.remove(force=True, v=True)


def _node(
    client: docker.DockerClient,
    image: str,
    name: str,
    relay: str,
    *,
    binds: dict[str, dict[str, str]] | None = None,
    command: list[str] | None = None,
) -> Any:
    """A started node container. Through the low-level API: `--security-opt
    systempaths=unconfined` (its engine writes /proc/sys) is no option of the SDK's `run`."""
    host_config = client.api.create_host_config(
        cap_add=["ALL"],
        cap_drop=["SYS_RESOURCE"],
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        device_cgroup_rules=["a *:* rwm"],
        cgroupns="private",
        tmpfs={"/var/lib/docker": "exec"},
        binds=binds or {},
    )
    host_config.update(MaskedPaths=[], ReadonlyPaths=[])
    created = client.api.create_container(
        image,
        command=command,
        name=name,
        hostname=name,
        labels={LABEL: str(os.getpid())},
        environment={"RELAY": relay},
        host_config=host_config,
    )
    client.api.start(created["Id"])
    return client.containers.get(created["Id"])


def _exec(container: Any, *argv: str) -> str:
    code, output = container.exec_run(list(argv))
    text: str = output.decode(errors="replace")
    assert code == 0, f"{' '.join(argv)} in {container.name} exited {code}: {text}"
    return text.strip()


@pytest.fixture
def two_nodes(
    docker_client: docker.DockerClient, base_image: str, settings: Settings
) -> Iterator[TwoNodes]:
    _remove_leftovers(docker_client)
    run = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="csmn-"))  # short: a unix socket path has 108 bytes
    node_image = f"{NODE_IMAGE}:{run}"
    pushed = f"{settings.registry}/{REGISTRY_REPOSITORY}:{run}"
    relay: Relay | None = None
    manager: docker.DockerClient | None = None
    try:
        (work / "context").mkdir()
        (work / "context" / "Dockerfile").write_text(DOCKERFILE)
        (work / "context" / "start.sh").write_text(START)
        (work / "context" / "start.sh").chmod(0o755)
        docker_client.images.build(
            path=str(work / "context"),
            tag=node_image,
            buildargs={"BASE_IMAGE": base_image},
            labels={LABEL: "node"},
            pull=False,
            rm=True,
            forcerm=True,
        )
        digest = images.push(docker_client, base_image, settings.registry, REGISTRY_REPOSITORY, run)
        gateway = docker_client.networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]
        host, _, port = settings.registry.rpartition(":")
        relay = Relay(gateway, (host, int(port)))
        (work / "socket").mkdir()
        managed = _node(
            docker_client,
            node_image,
            f"csmn-{run}-manager",
            relay.address,
            binds={str(work / "socket"): {"bind": "/run/outer", "mode": "rw"}},
            command=["--host", "unix:///run/outer/docker.sock"],
        )
        worker = _node(docker_client, node_image, f"csmn-{run}-worker", relay.address)
        sock = work / "socket" / "docker.sock"
        assert poll(sock.exists, 60, 0.5), f"the manager's engine did not start: {managed.logs()}"
        manager = docker.DockerClient(base_url=f"unix://{sock}", timeout=120)
        assert poll(lambda: _quiet_ping(manager), 60, 0.5)
        assert poll(lambda: worker.exec_run(["docker", "info"]).exit_code == 0, 60, 0.5)
        addresses = {}
        for container in (managed, worker):
            container.reload()
            addresses[container] = container.attrs["NetworkSettings"]["IPAddress"]
        manager.swarm.init(advertise_addr=addresses[managed])
        manager.swarm.reload()
        token = manager.swarm.attrs["JoinTokens"]["Worker"]
        _exec(worker, "docker", "swarm", "join", "--token", token, f"{addresses[managed]}:2377")
        worker_id = _exec(worker, "docker", "info", "--format", "{{.Swarm.NodeID}}")
        client = manager
        ready = poll(lambda: _states(client) == ["ready", "ready"], 60)
        assert ready, f"the worker did not become ready: {_states(client)}"
        yield TwoNodes(
            manager=manager,
            socket=sock,
            manager_id=str(manager.info()["Swarm"]["NodeID"]),  # what `init` records
            worker_id=worker_id,
            worker=worker,
            image=f"{settings.registry}/{REGISTRY_REPOSITORY}@{digest}",
        )
    finally:
        if manager is not None:
            manager.close()
        if relay is not None:
            relay.close()
        for container in docker_client.containers.list(all=True, filters={"name": f"csmn-{run}-"}):
            container.remove(force=True, v=True)
        for ref in (pushed, node_image):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(ref, force=True)
        shutil.rmtree(work, ignore_errors=True)


def _states(client: docker.DockerClient) -> list[str]:
    return sorted(str(n.attrs["Status"]["State"]) for n in client.nodes.list())


def _quiet_ping(client: docker.DockerClient) -> bool:
    try:
        return bool(client.ping())
    except docker.errors.DockerException:
        return False


def _nodes_running(client: docker.DockerClient, service: str) -> list[str]:
    found = client.services.get(service).tasks(filters={"desired-state": "running"})
    return sorted(t["NodeID"] for t in found if t["Status"]["State"] == "running")


def test_data_stays_on_the_agents_node_and_stateless_services_spread(
    two_nodes: TwoNodes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = two_nodes
    config = InstallationConfig(
        repository="http://127.0.0.1:1", namespace="csmn-", data_node=nodes.manager_id
    )
    image = ServiceImage(image=nodes.image, digest=nodes.image.rpartition("@")[2])
    runtime = Runtime(
        compose="apps/spread/1.0.0+1/compose.yml",
        services={"app": image, "files": image},
        main=MainService(service="app", port=8080, health="/"),
        data=(DataVolume(volume="files", service="files", path="/data"),),
    )
    sleep = ["sh", "-c", "exec sleep infinity"]
    compose: dict[str, Any] = {
        "version": "3.8",
        "services": {
            # two stateless replicas, at most one per node: one lands on the worker
            "app": {
                "image": "app",
                "command": sleep,
                "deploy": {"replicas": 2, "placement": {"max_replicas_per_node": 1}},
            },
            # two replicas on a data volume: without the pin, the scheduler spreads them too
            "files": {
                "image": "files",
                "command": ["sh", "-c", "echo kept > /data/marker && exec sleep infinity"],
                "volumes": ["files:/data"],
                "deploy": {"replicas": 2},
            },
        },
        "volumes": {"files": {}},
    }
    rendered = render_app(compose, runtime, config, "spread")
    assert rendered["services"]["files"]["deploy"]["placement"]["constraints"] == [
        f"node.id == {nodes.manager_id}"
    ]
    path = tmp_path / "spread.yml"
    path.write_text(yaml.safe_dump(rendered, sort_keys=False))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{nodes.socket}")  # the CLI `stack deploy` uses
    swarm.ensure_network(nodes.manager, config.network)
    stack = config.stack("spread")
    swarm.deploy(stack, path)
    expected = {f"{stack}_{name}": nodes.image for name in rendered["services"]}
    swarm.wait_converged(nodes.manager, stack, expected, timeout=180)

    assert _nodes_running(nodes.manager, f"{stack}_files") == [nodes.manager_id] * 2
    assert _nodes_running(nodes.manager, f"{stack}_app") == sorted(
        [nodes.manager_id, nodes.worker_id]
    )
    # the data volume exists on the agent's node only, where a backup reads it
    volume = f"{stack}_files"
    on_worker = _exec(nodes.worker, "docker", "volume", "ls", "--quiet").split()
    assert volume not in on_worker
    archive = tmp_path / "files.tar"
    archive_volume(nodes.manager, nodes.image, volume, archive)
    with tarfile.open(archive) as tar:
        member = tar.extractfile("./marker")
        assert member is not None and member.read() == b"kept\n"
