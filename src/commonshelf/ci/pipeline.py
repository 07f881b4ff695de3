"""The whole path over the shelf: vet recipes side by side, release, install on a local demo.

`vet` is CI's gate (`nox -s recipes`); `run_pipeline` is `./shelf pipeline`: every
recipe through the stages (`ci.stages`), the released versions rebuilt first when
this machine never published them (`ci.history`), promotion into the signed
catalogue (`ci.promote`), and an installation of every released app on this machine.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker

from commonshelf.catalogue import origin
from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.server import ensure_catalogue_server
from commonshelf.ci import history
from commonshelf.ci.linting import lint_verdicts
from commonshelf.ci.matrix import load_hooks
from commonshelf.ci.promote import ReleaseOutcome, release
from commonshelf.ci.rehearsal import SwarmApp
from commonshelf.ci.rescan import RescanOutcome, rescan
from commonshelf.ci.stages import Shelf, StageResult
from commonshelf.installation.agent import Agent
from commonshelf.platform.progress import Say, quiet
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import Recipe, load_recipe


def open_shelf(settings: Settings, say: Say = quiet) -> Shelf:
    """A Shelf that rebuilds the released versions first when this machine never published
    them (a fresh clone), so that upgrade checks start from real released builds."""
    shelf = Shelf(settings, say)

    one_at_a_time = threading.Lock()
    synced: list[bool] = []

    def ensure_history(apps: Collection[str] | None = None) -> None:
        if history.in_rebuild():  # a released version's own upgrade check, during the rebuild
            return
        with one_at_a_time:  # a recipe's upgrade check waits for its released version
            if not synced:  # a configured published repository holds the released versions:
                origin.sync(settings, say)  # nothing it holds is rebuilt
                synced.append(True)
            history.rebuild(shelf, say, apps)

    shelf.history = ensure_history
    return shelf


def demo_installation(
    settings: Settings,
    client: docker.DockerClient,
    apps: list[str],
    say: Say = quiet,
    home: Path | None = None,
    http_port: int = 80,
    namespace: str = "",
) -> list[str]:
    """Subscribe a local installation to the published catalogue and install `apps`. URLs out."""
    url = ensure_catalogue_server(settings, say)
    agent = Agent(home or settings.state_dir / "agent", client)
    root = (settings.public_dir / "metadata" / "1.root.json").read_bytes()
    say(f"Installation: subscribing to {url} (proxy on port {http_port})")
    # the demo follows testing, where a release lands (stable waits for `invoke promote`)
    agent.init(url, root, http_port=http_port, namespace=namespace, force=True, channel="testing")
    urls = []
    for app in apps:
        record, changed = agent.install(app)
        say(f"Installation: {'installed' if changed else 'already runs'} {app} {record.version}")
        urls.append(record.url)
    return urls


@dataclass
class PipelineReport:
    stages: list[StageResult]
    release: ReleaseOutcome
    catalogue_dir: Path
    catalogue_url: str
    app_urls: list[str]
    seconds: float
    rescan: RescanOutcome | None = None  # the released versions against today's DB

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.stages) and not self.release.refused


@dataclass(frozen=True)
class DemoInstallation:
    """Where the pipeline's local installation lives (tests use their own)."""

    home: Path | None = None  # default: <state dir>/agent
    http_port: int = 80
    namespace: str = ""


def unreleased(settings: Settings, recipes: list[Recipe]) -> list[Recipe]:
    """The recipes whose content is not what catalog.json says was released as their version:
    what a change to the shelf asks CI to vet (the rest was vetted when it was released)."""
    catalog = Catalog.load(settings.catalog_path)
    return [
        recipe
        for recipe in recipes
        if (released := catalog.versions(recipe.name).get(recipe.version)) is None
        or released.content_hash != recipe.content_hash()
    ]


def vet(shelf: Shelf, recipes: list[Recipe], jobs: int = 0) -> bool:
    """Build, test and scan each recipe, stopping a recipe at its first failed gate.

    Recipes run side by side on `jobs` threads (default: one per core, at most one per
    recipe); each stack publishes on its own ephemeral loopback port and carries its own
    labels, and the base image is built once before any of them starts.
    """

    def one(recipe: Recipe) -> bool:
        return shelf.first_failed_gate(recipe) is None

    if not recipes:
        return True
    shelf.lint_results.update(lint_verdicts(shelf.settings.root))  # once, for every recipe
    if shelf.history is not None:  # released versions first, their apps side by side
        shelf.history([recipe.name for recipe in recipes])
    shelf.base_tag  # noqa: B018 -- built (or found) once, before the workers start
    workers = max(1, min(jobs or os.cpu_count() or 1, len(recipes)))
    if workers == 1:
        return all([one(recipe) for recipe in recipes])
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vet") as pool:
        return all(list(pool.map(one, recipes)))


def run_pipeline(
    settings: Settings,
    names: list[str] | None = None,
    say: Say = quiet,
    install: DemoInstallation | None = DemoInstallation(),
) -> PipelineReport:
    """Every recipe through build, test and scan; release what passed; install it locally."""
    started = time.monotonic()
    shelf = open_shelf(settings, say)
    recipes = shelf.recipes(names)
    if shelf.history is not None:
        shelf.history([r.name for r in recipes])  # up front, so its rows lead the table
    vet(shelf, recipes)
    outcome = release(settings, shelf.client, recipes, shelf.base_tag, say=say)
    # every released version against today's DB (and an SBOM for any released without one)
    checked = rescan(settings, say=say) if Catalog.load(settings.catalog_path).apps else None
    urls: list[str] = []
    released = [
        r.name
        for r in recipes
        if r.name in {a for a, _ in outcome.released} or r.name in {a for a, _ in outcome.unchanged}
    ]
    if install is not None and released:
        urls = demo_installation(
            settings,
            shelf.client,
            released,
            say,
            home=install.home,
            http_port=install.http_port,
            namespace=install.namespace,
        )
    return PipelineReport(
        shelf.results,
        outcome,
        settings.public_dir,
        settings.catalogue_url,
        urls,
        time.monotonic() - started,
        checked,
    )


@dataclass(frozen=True)
class SmokeResult:
    app: str
    version: str
    passed: bool
    detail: str
    seconds: float


def smoke_installation(settings: Settings, home: Path | None = None) -> list[SmokeResult]:
    """Each app of the local installation exercised through its own protocol: the recipe's
    seed and verify hooks (the matrix's), against the installed version and its generated
    secrets. What an operator would try by hand after README line 1."""
    agent = Agent(home or settings.state_dir / "agent")
    catalog = agent.catalog()
    deployer = agent.deployer()
    results = []
    for name, record in sorted(agent.installed().items()):
        started = time.monotonic()
        _, entry = catalog.version(name, record.version)
        hooks = load_hooks(load_recipe(settings.recipes_dir / name))
        if hooks is None:
            results.append(SmokeResult(name, record.version, False, "no tests/hooks.py", 0.0))
            continue
        app = SwarmApp(deployer, name, entry.runtime)
        try:
            try:  # seeded by an earlier smoke: its data must still read back
                hooks.verify(app)
                detail = f"data seeded earlier read back at {record.url}"
            except Exception:  # nothing seeded yet (seed hooks make new data, once)
                hooks.seed(app)
                hooks.verify(app)
                detail = f"seeded and read back at {record.url}"
            passed = True
        except Exception as exc:  # an app that fails its own protocol is what this reports
            passed, detail = False, str(exc).strip()[:500] or repr(exc)
        results.append(
            SmokeResult(name, record.version, passed, detail, time.monotonic() - started)
        )
    return results
