"""A throw-away installation for the standard matrix: the agent's own deployer, on Swarm,
behind its own proxy, in a namespace of its own.

Everything it makes — stacks, the overlay network, secrets, volumes — carries the
namespace prefix `csm-<scope>-`, so recipes rehearsed side by side never meet, and
`close()` removes all of it (the data volumes included: this installation is a test).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from commonshelf.catalogue.contract import Runtime
from commonshelf.installation import swarm
from commonshelf.installation.deployer import STACK_LABEL, Deployer
from commonshelf.installation.state import InstallationConfig
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.wait import poll


@dataclass(frozen=True)
class Deployable:
    """One version as the agent would be handed it: its contract and compose file."""

    version: str
    runtime: Runtime
    compose: dict[str, Any]


@dataclass(frozen=True)
class PinnedProxy:
    compose: dict[str, Any]
    image: str  # pinned by digest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


REHEARSALS = Path(tempfile.gettempdir()) / "commonshelf-rehearsals"
PREFIX = "csm-"


def remove_namespace(client: docker.DockerClient, namespace: str) -> None:
    """Remove every stack, secret, volume and network whose name starts with `namespace`."""
    stacks = {str(s.attrs["Spec"]["Labels"].get(STACK_LABEL, "")) for s in client.services.list()}
    for stack in sorted(n for n in stacks if n.startswith(namespace)):
        with contextlib.suppress(CommonshelfError, docker.errors.APIError):
            swarm.remove(client, stack)
    for secret in client.secrets.list():
        if secret.name.startswith(namespace):
            with contextlib.suppress(docker.errors.APIError):
                secret.remove()
    for volume in client.volumes.list():
        if volume.name.startswith(namespace):
            with contextlib.suppress(docker.errors.APIError):
                volume.remove(force=True)
    for network in client.networks.list():
        if network.name.startswith(namespace):
            poll(functools.partial(_removed, network), 20, 1.0)


def _removed(network: Any) -> bool:
    """Remove a network; False while it is still busy (an overlay network stays in use for a
    moment after its stack is gone)."""
    try:
        network.remove()
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError:
        return False
    return True


ORPHAN_AGE = 3 * 3600  # seconds: a rehearsal with no owner file we can read, older than this


def _owner_alive(client: docker.DockerClient, home: Path, namespace: str) -> bool:
    """The process that made a rehearsal still runs on this host. A rehearsal whose owner
    file cannot be read (made under another TMPDIR, or by another machine sharing the
    engine) counts as alive until its services are ORPHAN_AGE old."""
    try:
        pid_text, host = (home / "owner").read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        created = [
            str(s.attrs.get("CreatedAt", ""))[:19]
            for s in client.services.list()
            if s.name.startswith(namespace)
        ]
        cutoff = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - ORPHAN_AGE))
        return not created or max(created) > cutoff
    if host != socket.gethostname():
        return True  # not ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_rehearsals(client: docker.DockerClient) -> list[str]:
    """Remove the rehearsals of matrix runs whose process is gone (a crash, a SIGKILL):
    what Ryuk would do for testcontainers. The namespaces removed."""
    namespaces = {
        name[: len(PREFIX) + 9]
        for name in [s.name for s in client.services.list()]
        + [n.name for n in client.networks.list()]
        if name.startswith(PREFIX)
    }
    reaped = []
    for namespace in sorted(namespaces):
        home = REHEARSALS / namespace.removeprefix(PREFIX).rstrip("-")
        if not _owner_alive(client, home, namespace):
            remove_namespace(client, namespace)
            shutil.rmtree(home, ignore_errors=True)
            reaped.append(namespace)
    return reaped


class Rehearsal:
    """An installation in a temporary home with its proxy on a free loopback port.

    `scope` is 8 hex digits: the namespace is `csm-<scope>-`, the home
    `<tmp>/commonshelf-rehearsals/<scope>/` with an `owner` file (pid, host) so that a
    later run can remove what a dead one left (`reap_dead_rehearsals`)."""

    def __init__(
        self,
        client: docker.DockerClient,
        scope: str,
        proxy: PinnedProxy,
        published: Collection[int] = (),
    ) -> None:
        """`published`: the host ports the app publishes itself (XMPP's 5222, say), each moved
        to a free port here so a rehearsal never meets an installation on the same host."""
        self.client = client
        self.namespace = f"{PREFIX}{scope}-"
        self.home = REHEARSALS / scope
        self.home.mkdir(parents=True, exist_ok=False)
        (self.home / "owner").write_text(f"{os.getpid()} {socket.gethostname()}\n")
        self.config = InstallationConfig(
            repository="rehearsal:",
            http_port=free_port(),
            namespace=self.namespace,
            host_ports={port: free_port() for port in sorted(set(published))},
        )
        self.deployer = Deployer(client, self.home, self.config)
        self.proxy = proxy
        self._proxy_up = False

    def ensure_proxy(self) -> None:
        if not self._proxy_up:
            self.deployer.deploy_proxy(self.proxy.compose, self.proxy.image)
            self._proxy_up = True

    def close(self) -> None:
        """Remove every stack, secret, volume and network of the namespace, and the home."""
        remove_namespace(self.client, self.namespace)
        shutil.rmtree(self.home, ignore_errors=True)


@dataclass
class Prober:
    """GETs a path through the proxy every `interval` seconds on a thread, counting answers
    that are not 200 (connection errors included), while an update runs."""

    deployer: Deployer
    app: str
    path: str
    interval: float = 0.1
    limit: float = 600.0  # a probe run never outlives this, whatever happens to the caller
    probes: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    first_failure: float | None = None  # time.monotonic() of the first and last failed probe
    last_failure: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Prober:
        self._thread = threading.Thread(target=self._run, name=f"probe-{self.app}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            self.probes += 1
            try:
                answer = self.deployer.get(self.app, self.path, timeout=5)
                if answer.status_code != 200:
                    self._failed(started, f"HTTP {answer.status_code}")
            except requests.RequestException as exc:
                self._failed(started, type(exc).__name__)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _failed(self, at: float, why: str) -> None:
        self.failed += 1
        self.failures.append(why)
        self.first_failure = at if self.first_failure is None else self.first_failure
        self.last_failure = at

    @property
    def downtime(self) -> float:
        """Seconds from the first failed probe to the one after the last (0: none failed)."""
        if self.first_failure is None or self.last_failure is None:
            return 0.0
        return round(self.last_failure - self.first_failure + self.interval, 1)


class SwarmApp:
    """The `app` handed to a recipe's seed hooks during the matrix: its stack on Swarm,
    reached through the proxy (same methods as the harness's RunningStack)."""

    def __init__(self, deployer: Deployer, app: str, runtime: Runtime) -> None:
        self.deployer = deployer
        self.app = app
        self.runtime = runtime

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.deployer.config.http_port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def request(self, method: str, path: str = "/", **kwargs: Any) -> requests.Response:
        """Any HTTP method through the installation's proxy, with the app's Host header (the
        proxy routes by it; `url()` alone reaches the proxy, not the app)."""
        headers = {"Host": self.deployer.config.hostname(self.app), **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 10)
        return requests.request(method, self.url(path), headers=headers, **kwargs)

    def get(self, path: str = "/", **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def secret(self, name: str) -> str:
        """A secret the installation generated for the app (what services read at
        /run/secrets/NAME), as `RunningStack.secret` gives it in a recipe's own tests."""
        return (self.deployer.home / "secrets" / self.app / name).read_text()

    def exec(self, command: str | list[str], service: str | None = None, user: str = "") -> str:
        return self.deployer.exec(self.app, service or self.runtime.main.service, command, user)

    def restart(self, service: str | None = None) -> None:
        self.deployer.restart(self.app, service, timeout=self.runtime.main.timeout + 60)

    def logs(self, service: str, lines: int = 30) -> str:
        raw = self.deployer.container(self.app, service).logs(tail=lines)
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
