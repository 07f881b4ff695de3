"""Run a recipe's stack in throw-away containers for its tests (a pytest plugin).

Registered as the `commonshelf` pytest plugin through an entry point, so every
recipe's `tests/` folder gets the same fixtures: `recipe`, `recipe_images` and
`app` (the whole stack up and healthy, with the main port published on
127.0.0.1). Containers are started with testcontainers; Ryuk cannot be pulled
here, so every container, network and volume carries this run's labels and is
removed at the end, and leftovers of dead runs are removed at the start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from .errors import CommonshelfError
from .recipe import Recipe, load_recipe, named_volumes

LABEL_RUN = "dev.commonshelf.test-run"
LABEL_PID = "dev.commonshelf.test-pid"
LABEL_HOST = "dev.commonshelf.test-host"
LABEL_SCOPE = "dev.commonshelf.test-scope"  # one matrix or fixture, when runs share a process
RUN_ID = uuid.uuid4().hex[:12]
ENV_RECIPE = "COMMONSHELF_RECIPE_DIR"
ENV_IMAGES = "COMMONSHELF_IMAGES"


def run_labels(scope: str = "") -> dict[str, str]:
    """Labels of everything this test run creates; `scope` narrows them to one stack's owner."""
    labels = {LABEL_RUN: RUN_ID, LABEL_PID: str(os.getpid()), LABEL_HOST: socket.gethostname()}
    if scope:
        labels[LABEL_SCOPE] = scope
    return labels


def new_scope(name: str) -> str:
    """A label value that tells one recipe's test resources from others running alongside."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")
_UNIT_NS = {"h": 3600e9, "m": 60e9, "s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0}


def duration_ns(value: str | int | float) -> int:
    """Compose durations ('5s', '1m30s', '500ms') in nanoseconds, as the Engine API wants."""
    if isinstance(value, int | float):
        return int(value * 1e9)
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        raise CommonshelfError(f"'{value}' is not a duration.", "write durations like 5s or 1m30s.")
    return int(sum(float(n) * _UNIT_NS[u] for n, u in parts))


def engine_healthcheck(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A compose `healthcheck:` block as Engine API HealthConfig."""
    test = spec["test"]
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    result: dict[str, Any] = {"test": list(test)}
    for key, api in (
        ("interval", "interval"),
        ("timeout", "timeout"),
        ("start_period", "start_period"),
    ):
        if key in spec:
            result[api] = duration_ns(spec[key])
    if "retries" in spec:
        result["retries"] = int(spec["retries"])
    return result


def bind_mounts(spec: Any) -> list[tuple[str, str, str]]:
    """(host path, container path, mode) of a service's bind mounts (absolute host paths).

    Recipes may not bind host paths (lint R-rules), but the harness still runs what a
    compose file says, so the matrix can prove what such a recipe does.
    """
    mounts: list[tuple[str, str, str]] = []
    for item in spec if isinstance(spec, list) else []:
        if isinstance(item, str) and item.startswith("/"):
            source, _, rest = item.partition(":")
            target, _, mode = rest.partition(":")
            mounts.append((source, target, mode or "rw"))
        elif isinstance(item, dict) and item.get("type") == "bind":
            mode = "ro" if item.get("read_only") else "rw"
            mounts.append((str(item["source"]), str(item["target"]), mode))
    return mounts


def networks(service: Mapping[str, Any]) -> list[str]:
    """The compose networks a service joins ('default' when it names none), in order."""
    spec = service.get("networks")
    names = list(spec) if isinstance(spec, list | dict) else []
    return [str(n) for n in names] or ["default"]


def _environment(spec: Any) -> dict[str, str]:
    if isinstance(spec, dict):
        return {str(k): "" if v is None else str(v) for k, v in spec.items()}
    if isinstance(spec, list):
        pairs = (str(item).partition("=") for item in spec)
        return {key: value for key, _, value in pairs}
    return {}


@dataclass
class RunningService:
    name: str
    container: DockerContainer

    @property
    def docker_container(self) -> Any:
        return self.container.get_wrapped_container()


@dataclass
class RunningStack:
    """A recipe's services running for a test, main port published on loopback."""

    recipe: Recipe
    client: docker.DockerClient
    services: dict[str, RunningService]
    volumes: dict[str, str]  # compose volume name -> engine volume name
    networks: dict[str, Network] = field(default_factory=dict)  # compose name -> network
    _port: int = field(default=0)

    @property
    def main(self) -> RunningService:
        return self.services[self.recipe.main.service]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def get(self, path: str = "/", **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return requests.get(self.url(path), **kwargs)

    def exec(self, command: str | list[str], service: str | None = None, user: str = "") -> str:
        """Run a command in a service; raise with its output when it fails."""
        target = self.services[service or self.recipe.main.service].docker_container
        argv = ["sh", "-c", command] if isinstance(command, str) else command
        code, output = target.exec_run(argv, user=user)
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        if code != 0:
            raise AssertionError(f"`{command}` in {service or 'main'} exited {code}: {text}")
        return text

    def logs(self, service: str, lines: int = 30) -> str:
        raw = self.services[service].docker_container.logs(tail=lines)
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def _state(self, name: str) -> str:
        """'ready', 'exited', or the engine's health status ('starting', 'unhealthy')."""
        container = self.services[name].docker_container
        container.reload()
        state = container.attrs["State"]
        if state.get("Status") in ("exited", "dead"):
            return "exited"
        health = (state.get("Health") or {}).get("Status")
        if health is None:
            return "ready" if state.get("Status") == "running" else "starting"
        return "ready" if health == "healthy" else str(health)

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Wait until every service is running and healthy; fail with their last logs if not."""
        limit = timeout or self.recipe.main.timeout
        deadline = time.monotonic() + limit
        while True:
            states = {name: self._state(name) for name in self.services}
            waiting = sorted(n for n, s in states.items() if s != "ready")
            if not waiting:
                break
            if "exited" in states.values() or time.monotonic() > deadline:
                report = "; ".join(
                    f"{n} ({states[n]}): {self.logs(n, 10).strip()[-800:]}" for n in waiting
                )
                raise AssertionError(f"{self.recipe.name}: not healthy within {limit}s: {report}")
            time.sleep(0.5)
        self._port = int(self.main.container.get_exposed_port(self.recipe.main.port))

    def restart(self, service: str | None = None) -> None:
        """Restart one service (default: all), then wait for health again."""
        names = [service] if service else list(self.services)
        for name in names:
            self.services[name].docker_container.restart(timeout=20)
        self.wait_healthy()

    def stop(self, keep_volumes: bool = False) -> None:
        """Remove the containers and the networks; the volumes too unless `keep_volumes`."""
        for running in self.services.values():
            with contextlib.suppress(docker.errors.NotFound):
                running.container.stop(force=True, delete_volume=True)  # anonymous ones only
        if not keep_volumes:
            for volume in self.volumes.values():
                with contextlib.suppress(docker.errors.NotFound):
                    self.client.volumes.get(volume).remove(force=True)
        for network in self.networks.values():
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()
        self.networks = {}


def start_stack(
    recipe: Recipe,
    images: Mapping[str, str],
    client: docker.DockerClient,
    volumes: Mapping[str, str] | None = None,
    scope: str = "",
) -> RunningStack:
    """Start every service of the recipe's compose file; the caller must `stop()` it.

    `volumes` (compose name -> engine volume) reuses the volumes of an earlier stack,
    e.g. to start a new version on the data an old one wrote. `scope` labels what is
    created, so one recipe's leftovers can be told from another's running alongside.
    """
    compose = recipe.compose()
    labels = run_labels(scope)
    stack = RunningStack(recipe=recipe, client=client, services={}, volumes=dict(volumes or {}))
    try:
        for network_name in sorted({n for s in compose["services"].values() for n in networks(s)}):
            stack.networks[network_name] = Network(docker_network_kw={"labels": labels}).create()
        for name, spec in compose["services"].items():
            joined = networks(spec)
            image = images.get(name) or spec.get("image")
            if not image:
                raise CommonshelfError(
                    f"{recipe.compose_path}: service '{name}' has no image.",
                    "build it (recipe.yml services) or pin an image.",
                )
            container = DockerContainer(
                str(image), network=stack.networks[joined[0]], network_aliases=[name]
            )
            for key, value in _environment(spec.get("environment")).items():
                container.with_env(key, value)
            for volume, path in named_volumes(spec.get("volumes")):
                engine_name = stack.volumes.get(volume)
                if engine_name is None:
                    engine_name = f"cstest-{scope or RUN_ID + '-' + recipe.name}-{volume}"
                    client.volumes.create(engine_name, labels=labels)
                    stack.volumes[volume] = engine_name
                container.with_volume_mapping(engine_name, path, "rw")
            for source, target, mode in bind_mounts(spec.get("volumes")):
                container.with_volume_mapping(source, target, mode)
            if name == recipe.main.service:
                # Published on loopback only (the docker SDK takes (host_ip, port) tuples).
                container.ports[f"{recipe.main.port}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
            if spec.get("command"):
                container.with_command(spec["command"])
            run_kwargs: dict[str, Any] = {"labels": labels}
            if spec.get("user") is not None:
                run_kwargs["user"] = str(spec["user"])
            if spec.get("healthcheck") and not spec["healthcheck"].get("disable"):
                run_kwargs["healthcheck"] = engine_healthcheck(spec["healthcheck"])
            container.with_kwargs(**run_kwargs)
            container.start()
            stack.services[name] = RunningService(name, container)
            for other in joined[1:]:
                stack.networks[other].connect(container.get_wrapped_container().id, [name])
        stack.wait_healthy()
    except BaseException:
        stack.stop()
        raise
    return stack


def remove_leftovers(client: docker.DockerClient, run_id: str | None = None) -> int:
    """Remove test containers, volumes and networks of `run_id`, or of runs whose process died."""
    host = socket.gethostname()

    def dead(labels: Mapping[str, str]) -> bool:
        if run_id is not None:
            return labels.get(LABEL_RUN) == run_id
        if labels.get(LABEL_HOST) != host:
            return False
        try:
            os.kill(int(labels.get(LABEL_PID, "0")), 0)
        except (ProcessLookupError, ValueError):
            return True
        except PermissionError:
            return False
        return False

    removed = 0
    for container in client.containers.list(all=True, sparse=True, filters={"label": LABEL_RUN}):
        if dead(container.attrs.get("Labels") or {}):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
            removed += 1
    for volume in client.volumes.list(filters={"label": LABEL_RUN}):
        if dead(volume.attrs.get("Labels") or {}):
            volume.remove(force=True)
            removed += 1
    for network in client.networks.list(filters={"label": LABEL_RUN}):
        if dead(network.attrs.get("Labels") or {}):
            network.remove()
            removed += 1
    return removed


# --------------------------------------------------------------------------- pytest plugin


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_client_key] = None


_client_key = pytest.StashKey[docker.DockerClient | None]()


def _client(config: pytest.Config) -> docker.DockerClient:
    client = config.stash.get(_client_key, None)
    if client is None:
        from .environment import ensure
        from .settings import Settings

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
        images: dict[str, str] = json.loads(given)
        return images
    from .images import build_recipe, ensure_base_image
    from .settings import Settings
    from .vcs import revision, source_url

    client = _client(request.config)
    settings = Settings.load()
    base = ensure_base_image(client, settings)
    built = build_recipe(
        client, recipe, base.tag, revision=revision(settings.root), source=source_url(settings.root)
    )
    return {service: image.ref for service, image in built.items()}


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


# --------------------------------------------------------------------------- runner


@dataclass(frozen=True)
class TestRun:
    """What running a recipe's tests proved, for the evidence record."""

    passed: int
    failed: int
    errors: int
    skipped: int
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.errors == 0 and self.passed > 0

    @property
    def summary(self) -> str:
        return (
            f"{self.passed} passed, {self.failed} failed, {self.errors} errors, "
            f"{self.skipped} skipped in {self.seconds:.1f}s"
        )


def run_recipe_tests(
    recipe: Recipe, images: Mapping[str, str], work_dir: Path, capture: bool = True
) -> TestRun:
    """Run `recipes/<app>/tests` with pytest in a child process against the given images."""
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    if not recipe.tests_dir.is_dir():
        return TestRun(0, 0, 1, 0, 0.0, f"{recipe.tests_dir} is missing")
    work_dir.mkdir(parents=True, exist_ok=True)
    report = work_dir.resolve() / f"{recipe.name}-junit.xml"
    report.unlink(missing_ok=True)
    env = dict(os.environ, **{ENV_RECIPE: str(recipe.path), ENV_IMAGES: json.dumps(dict(images))})
    argv = [
        sys.executable,
        "-m",
        "pytest",
        str(recipe.tests_dir),
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        f"--rootdir={recipe.path}",
        "-c",
        os.devnull,
        "-q",
    ]
    started = time.monotonic()
    done = subprocess.run(
        argv, env=env, cwd=recipe.path, capture_output=capture, text=True, check=False
    )
    seconds = time.monotonic() - started
    output = (done.stdout or "") + (done.stderr or "")
    try:
        root = ET.parse(report).getroot()
        found = root if root.tag == "testsuite" else root.find("testsuite")
        suite = root if found is None else found
        tests = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0))
        errors = int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
    except (OSError, ET.ParseError):
        return TestRun(0, 0, 1, 0, seconds, output or f"pytest exited {done.returncode}")
    return TestRun(tests - failed - errors - skipped, failed, errors, skipped, seconds, output)
