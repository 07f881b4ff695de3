"""Bring up what every entry point needs: Debian packages, a Docker engine, a registry, Swarm.

Each step checks first and acts only when something is missing, so calling
`ensure()` from every task and test session is cheap and idempotent. What
cannot be done automatically (not root, no apt) stops with one sentence that
says what to install.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from commonshelf.platform.errors import EnvironmentNotReady
from commonshelf.platform.fsutil import write_text_atomic
from commonshelf.platform.proc import run, tail
from commonshelf.platform.progress import Say, quiet
from commonshelf.platform.settings import Settings
from commonshelf.platform.wait import poll

# command -> Debian package that provides it
REQUIRED_COMMANDS: dict[str, str] = {
    "dockerd": "docker.io",
    "docker": "docker.io",
    "debootstrap": "debootstrap",
    "docker-registry": "docker-registry",
}


@dataclass
class Environment:
    """What `ensure()` found or started: a connected Docker client and the registry address."""

    client: docker.DockerClient
    registry: str


def missing_packages(commands: Iterable[str] = tuple(REQUIRED_COMMANDS)) -> list[str]:
    return sorted({REQUIRED_COMMANDS[c] for c in commands if shutil.which(c) is None})


def ensure_packages(say: Say = quiet, commands: Iterable[str] = tuple(REQUIRED_COMMANDS)) -> None:
    """Install the Debian packages that provide `commands` (default: all Commonshelf drives)."""
    missing = missing_packages(commands)
    if not missing:
        return
    names = " ".join(missing)
    if os.geteuid() != 0:
        raise EnvironmentNotReady(
            f"Missing system packages: {names}.", f"run `apt-get install -y {names}` as root."
        )
    if shutil.which("apt-get") is None:
        raise EnvironmentNotReady(
            f"Missing system packages: {names}, and apt-get is not available.",
            f"install {names} (Debian 12 package names) with your system's package manager.",
        )
    say(f"Installing Debian packages: {names}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *missing]):
        run(
            argv,
            what=f"`{' '.join(argv)}`",
            fix=f"check Debian mirror access, then run `apt-get install -y {names}`.",
            error=EnvironmentNotReady,
            env=env,
        )


def _run_dir(settings: Settings) -> Path:
    path = settings.state_dir / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def daemon_pid(settings: Settings, name: str) -> int | None:
    """The pid of a daemon this module started, if it still runs."""
    pidfile = _run_dir(settings) / f"{name}.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _pid_alive(pid) else None


def spawn_daemon(settings: Settings, name: str, argv: list[str], note: str = "") -> int:
    """Start a long-running process detached from this one, logging to the state dir."""
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log = open(settings.logs_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()
    write_text_atomic(_run_dir(settings) / f"{name}.pid", f"{proc.pid} {note}\n")
    return proc.pid


def stop_daemon(settings: Settings, name: str) -> None:
    pid = daemon_pid(settings, name)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        poll(lambda: not _pid_alive(pid), 5, 0.1)
    (_run_dir(settings) / f"{name}.pid").unlink(missing_ok=True)


def _log_tail(settings: Settings, name: str, lines: int = 3) -> str:
    try:
        text = (settings.logs_dir / f"{name}.log").read_text(errors="replace")
    except OSError:
        return ""
    return tail(text, lines)


def _docker_client() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except (docker.errors.DockerException, OSError):
        return None
    return client


def ensure_docker(settings: Settings, say: Say = quiet) -> docker.DockerClient:
    """Connect to the Docker engine, starting Debian's dockerd when none answers."""
    client = _docker_client()
    if client is not None:
        return client
    if os.geteuid() != 0:
        raise EnvironmentNotReady(
            "No Docker engine answers on /var/run/docker.sock.",
            "start one as root (`dockerd &` or `systemctl start docker`).",
        )
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        say("Starting the Docker engine (systemctl start docker)")
        run(
            ["systemctl", "start", "docker"],
            fix="read `journalctl -u docker` and start the engine by hand.",
            error=EnvironmentNotReady,
            timeout=120,
        )
    elif daemon_pid(settings, "dockerd") is None:
        say("Starting the Docker engine (dockerd)")
        spawn_daemon(settings, "dockerd", ["dockerd"])
    client = poll(_docker_client, 60, 0.5)
    if client is not None:
        return client
    raise EnvironmentNotReady(
        f"The Docker engine did not come up within 60 s ({_log_tail(settings, 'dockerd')}).",
        f"read {settings.logs_dir / 'dockerd.log'} and start dockerd by hand.",
    )


def registry_answers(registry: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: {addr}
"""


def ensure_registry(settings: Settings, say: Say = quiet) -> str:
    """Make the configured registry answer, starting a local one for a loopback address."""
    registry = settings.registry
    if registry_answers(registry):
        return registry
    host = registry.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost"):
        raise EnvironmentNotReady(
            f"The registry {registry} does not answer on /v2/.",
            "start it, or unset COMMONSHELF_REGISTRY to use a local one on 127.0.0.1:5000.",
        )
    port = registry.rsplit(":", 1)[1]
    name = f"registry-{port}"
    if daemon_pid(settings, name) is None:
        say(f"Starting a local registry on {registry}")
        data = settings.registry_dir / port / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = settings.registry_dir / port / "config.yml"
        write_text_atomic(config, REGISTRY_CONFIG.format(data=data, addr=registry))
        spawn_daemon(settings, name, ["docker-registry", "serve", str(config)])
    if poll(lambda: registry_answers(registry), 30, 0.3):
        return registry
    raise EnvironmentNotReady(
        f"The local registry on {registry} did not come up ({_log_tail(settings, name)}).",
        f"read {settings.logs_dir / f'{name}.log'}; another process may hold the port.",
    )


def ensure_swarm(client: docker.DockerClient, say: Say = quiet) -> None:
    """Make this engine a Swarm manager (single node) so `docker stack deploy` works."""
    state = client.info().get("Swarm", {}).get("LocalNodeState", "inactive")
    if state == "active":
        return
    if state != "inactive":
        raise EnvironmentNotReady(
            f"Swarm is in state '{state}' on this engine.",
            "wait for it to settle, or run `docker swarm leave --force` and retry.",
        )
    say("Initialising a single-node Swarm")
    try:
        client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    except docker.errors.APIError as exc:
        raise EnvironmentNotReady(
            f"`docker swarm init` failed: {exc.explanation}",
            "run `docker swarm init --advertise-addr 127.0.0.1` by hand to see why.",
        ) from exc


def ensure(
    settings: Settings,
    *,
    registry: bool = True,
    swarm: bool = True,
    commands: Iterable[str] = tuple(REQUIRED_COMMANDS),
    say: Say = quiet,
) -> Environment:
    """Everything the pipeline needs (or `commands` of it), started if missing. Idempotent."""
    ensure_packages(say, commands)
    client = ensure_docker(settings, say)
    reg = ensure_registry(settings, say) if registry else settings.registry
    if swarm:
        ensure_swarm(client, say)
    return Environment(client=client, registry=reg)
