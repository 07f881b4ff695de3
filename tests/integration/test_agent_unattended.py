"""The installation agent runs unattended on a real app with a database (I Hate Money on
PostgreSQL): `run` applies a minor update by policy with zero failed requests, rolls a broken
update back by itself and does not retry it, restores a backup, and moves the installation to
a fresh home with export/import. Images, signatures, registry, Swarm and the app are real;
only CI's gates are recorded as passed (`record_as_vetted`), since CI is not the subject."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import docker
import pytest
import requests

from commonshelf.catalogue.server import ensure_catalogue_server
from commonshelf.ci.matrix import load_hooks
from commonshelf.ci.pipeline import DemoInstallation
from commonshelf.ci.promote import release
from commonshelf.ci.rehearsal import SwarmApp, remove_namespace
from commonshelf.ci.stages import Shelf
from commonshelf.installation import cli, journal
from commonshelf.installation.agent import Agent
from commonshelf.installation.policy import load_policy
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import load_recipe
from commonshelf.recipes.scaffold import bump_recipe

from ..conftest import REPO, free_port, shelf_at
from .conftest import edit_yaml, record_as_vetted

APP = "ihatemoney"
PROJECT = "seeded-trip"


@pytest.fixture
def ihm_shelf(tmp_path: Path, settings: Settings) -> Iterator[Settings]:
    root = tmp_path / "shelf"
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
    shutil.copytree(REPO / "shared", root / "shared", ignore=ignore)
    shutil.copytree(REPO / "recipes" / APP, root / "recipes" / APP, ignore=ignore)
    (root / "pyproject.toml").write_text("[project]\nname = 'shelf-under-test'\n")
    yield from shelf_at(root, settings)


def _publish(shelf_settings: Settings) -> str:
    """Build the recipe as it is now and release it (real images, registry and signatures)."""
    shelf = Shelf(shelf_settings)
    [recipe] = shelf.recipes([APP])
    assert shelf.build(recipe).passed
    record_as_vetted(shelf, recipe)
    outcome = release(shelf_settings, shelf.client, [recipe], shelf.base_tag, say=lambda _: None)
    assert outcome.released == [(APP, recipe.version)], outcome.refused
    return recipe.version


def _commonshelf(home: Path, *args: str) -> tuple[int, list[dict[str, object]] | dict[str, object]]:
    """The operator's command, in this process, with --json."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["--home", str(home), *args, "--json"])
    return code, json.loads(out.getvalue() or "null")


def _data(app: SwarmApp) -> str:
    """A checksum of what a user sees of the seeded project: members, balances, bills."""
    auth = (PROJECT, "seeded-trip-private-code")
    project = app.get(f"/api/projects/{PROJECT}", auth=auth, timeout=30)
    bills = app.get(f"/api/projects/{PROJECT}/bills", auth=auth, timeout=30)
    assert project.status_code == 200 and bills.status_code == 200, project.text
    seen = {"project": project.json(), "bills": sorted(bills.json(), key=lambda b: b["id"])}
    return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()


class Prober:
    """GET the app's health path through the proxy every 100 ms; count what failed."""

    def __init__(self, app: SwarmApp, path: str) -> None:
        self.app, self.path = app, path
        self.sent = self.failed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self.sent += 1
            try:
                answer = self.app.get(self.path, timeout=5)
                if answer.status_code != 200:
                    self.failed += 1
                    self.errors.append(f"HTTP {answer.status_code}")
            except requests.RequestException as exc:
                self.failed += 1
                self.errors.append(type(exc).__name__)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_unattended_agent_keeps_a_database_app_serving_and_its_data(
    ihm_shelf: Settings,
    installation: DemoInstallation,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    folder = ihm_shelf.recipes_dir / APP
    hooks: ModuleType | None = load_hooks(load_recipe(folder))
    assert hooks is not None
    v1 = _publish(ihm_shelf)
    url = ensure_catalogue_server(ihm_shelf)
    root = ihm_shelf.public_dir / "metadata" / "1.root.json"
    assert installation.home is not None
    home = installation.home
    code, _ = _commonshelf(
        home,
        "init",
        "--repository",
        url,
        "--root",
        str(root),
        "--http-port",
        str(installation.http_port),
        "--namespace",
        installation.namespace,
        "--channel",
        "testing",
    )
    assert code == 0

    # --- bad input: one line each, nothing changed
    for args, says in (
        (["install", "nosuchapp"], "No app 'nosuchapp'"),
        (["install", APP, "--version", "9.9.9+1"], "no published version 9.9.9+1"),
        (["install", APP, "--set", "NOPE=1"], "has no setting NOPE"),
        (["install", APP, "--set", "SESSION_COOKIE_SECURE=perhaps"], "SESSION_COOKIE_SECURE"),
    ):
        with pytest.raises(CommonshelfError, match=re.escape(says)):
            cli.run(["--home", str(home), *args])
    assert Agent(home, docker_client).installed() == {}

    code, record = _commonshelf(home, "install", APP)
    assert code == 0 and isinstance(record, dict) and record["version"] == v1
    agent = Agent(home, docker_client)
    app = SwarmApp(agent.deployer(), APP, agent.runtime(APP, v1))
    hooks.seed(app)
    hooks.verify(app)
    seeded = _data(app)

    # --- v2 (a minor version: new settings of the app's service) applied by `run`, by policy
    edit_yaml(
        folder / "compose.yml",
        lambda c: c["services"]["app"]["environment"].update(GUNICORN_CMD_ARGS="--timeout 60"),
    )
    v2 = bump_recipe(folder, "minor")[1]
    assert _publish(ihm_shelf) == v2
    with Prober(app, "/healthcheck") as probe:
        code, events = _commonshelf(home, "run")
    assert code == 0, events
    assert probe.sent > 50 and probe.failed == 0, (probe.sent, probe.errors[:5])
    assert isinstance(events, list) and [(e["outcome"], e["to_version"]) for e in events] == [
        ("done", v2)
    ]
    assert Agent(home, docker_client).record(APP).version == v2
    assert _data(app) == seeded
    before_v2 = Agent(home, docker_client).record(APP).backup
    assert (home / "backups" / APP / before_v2 / "db.tar").is_file()

    # --- a second poll with nothing new changes nothing
    code, events = _commonshelf(home, "run")
    assert code == 0 and events == []

    # --- a broken v3 (its health check fails): rolled back by itself, not retried
    def broken(c: dict) -> None:  # type: ignore[type-arg]
        c["services"]["app"]["healthcheck"].update(
            test=["CMD", "http-health", "8000", "/missing"], start_period="5s", retries=2
        )

    edit_yaml(folder / "compose.yml", broken)
    v3 = bump_recipe(folder, "patch")[1]
    assert _publish(ihm_shelf) == v3
    started = time.monotonic()
    code, events = _commonshelf(home, "run")
    assert code == 1, events
    assert time.monotonic() - started < 420
    assert isinstance(events, list) and [e["outcome"] for e in events] == ["rolled-back"]
    assert Agent(home, docker_client).record(APP).version == v2
    hooks.verify(app)
    assert _data(app) == seeded
    assert v3 in load_policy(home, APP).bad
    code, statuses = _commonshelf(home, "status")
    assert isinstance(statuses, list)
    [status] = statuses
    assert status["healthy"] is True and status["version"] == v2
    assert f"{v3} failed" in str(status["last"]) and "will not be retried" in str(status["last"])
    code, events = _commonshelf(home, "run")
    assert code == 0 and isinstance(events, list)
    assert [e["outcome"] for e in events] == ["held"] and "failed here before" in str(
        events[0]["sentence"]
    )

    # --- backup, delete the data through the app, restore: the data is back
    code, made = _commonshelf(home, "backup", APP)
    assert code == 0 and isinstance(made, dict) and made["backup"]
    gone = app.request(
        "DELETE", f"/api/projects/{PROJECT}", auth=(PROJECT, "seeded-trip-private-code")
    )
    assert gone.status_code == 200, gone.text
    with pytest.raises(AssertionError):
        hooks.verify(app)
    code, events = _commonshelf(home, "restore", APP, str(made["backup"]))
    assert code == 0, events
    hooks.verify(app)
    assert _data(app) == seeded
    assert journal.last(home, APP) is not None

    # --- export, then import into a fresh home and namespace: the same data is served
    archive = tmp_path / "installation.tar.gz"
    code, _ = _commonshelf(home, "export", str(archive))
    assert code == 0 and archive.is_file()
    other = DemoInstallation(
        home=tmp_path / "other", http_port=free_port(), namespace=f"csi{uuid.uuid4().hex[:6]}-"
    )
    assert other.home is not None
    try:
        code, events = _commonshelf(
            other.home,
            "import",
            str(archive),
            "--namespace",
            other.namespace,
            "--http-port",
            str(other.http_port),
        )
        assert code == 0, events
        moved = Agent(other.home, docker_client)
        assert moved.record(APP).version == v2
        copy = SwarmApp(moved.deployer(), APP, moved.runtime(APP, v2))
        hooks.verify(copy)
        assert _data(copy) == seeded
    finally:
        remove_namespace(docker_client, other.namespace)
