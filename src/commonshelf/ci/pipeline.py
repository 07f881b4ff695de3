"""The CI stages over the shelf — build, test, scan, release — and the end-to-end demo.

Each stage records its result in the recipe's evidence record (keyed by
content hash) and skips work whose evidence already exists for the same
content, so running the whole pipeline twice does only what changed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import semver

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.release import ReleaseOutcome, release
from commonshelf.ci import history, images, scan
from commonshelf.ci.evidence import Evidence, EvidenceStore, tool_versions
from commonshelf.ci.matrix import MAX_LEVEL, Released, run_matrix
from commonshelf.ci.runner import run_recipe_tests
from commonshelf.installation.agent import Agent
from commonshelf.platform import environment, vcs
from commonshelf.platform.errors import CommonshelfError, RecipeError
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import Recipe, discover, load_recipe

Say = Callable[[str], None]
GATE_SEVERITY = "CRITICAL"


def _quiet(_: str) -> None:
    pass


@dataclass
class StageResult:
    recipe: str
    stage: str
    passed: bool
    skipped: bool
    summary: str
    seconds: float
    started: float = 0.0  # time.monotonic() when the stage began


@dataclass
class Shelf:
    """One checkout of the shelf and the engine it builds with."""

    settings: Settings
    say: Say = _quiet
    _env: environment.Environment | None = None
    _base: str | None = None
    _tools: dict[str, str] | None = None
    results: list[StageResult] = field(default_factory=list)
    # Recipes are vetted on threads: the engine, base image and tool versions are set up once.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def env(self) -> environment.Environment:
        with self._lock:
            if self._env is None:
                self._env = environment.ensure(self.settings, say=self.say)
            return self._env

    @property
    def tools(self) -> dict[str, str]:
        with self._lock:
            if self._tools is None:
                self._tools = tool_versions(self.client)
            return self._tools

    @property
    def client(self) -> docker.DockerClient:
        return self.env.client

    @property
    def base_tag(self) -> str:
        with self._lock:
            return self._base_tag()

    def _base_tag(self) -> str:
        if self._base is None:
            started = time.monotonic()
            base = images.ensure_base_image(self.client, self.settings, say=self.say)
            self._base = base.tag
            self.results.append(
                StageResult(
                    "(base image)",
                    "build",
                    True,
                    not base.built,
                    base.tag,
                    time.monotonic() - started,
                )
            )
        return self._base

    @property
    def evidence(self) -> EvidenceStore:
        return EvidenceStore(self.settings.evidence_dir)

    def recipes(self, names: list[str] | None = None) -> list[Recipe]:
        if names:
            missing = [n for n in names if not (self.settings.recipes_dir / n).is_dir()]
            if missing:
                known = ", ".join(p.name for p in discover(self.settings.recipes_dir)) or "none"
                raise RecipeError(
                    f"No recipe {', '.join(missing)} under {self.settings.recipes_dir} "
                    f"(recipes: {known}).",
                    "check the name, or create it with `invoke new APP`.",
                )
            return [load_recipe(self.settings.recipes_dir / name) for name in names]
        found = discover(self.settings.recipes_dir)
        if not found:
            raise RecipeError(
                f"No recipes under {self.settings.recipes_dir}.",
                "create one with `invoke new APP`.",
            )
        return [load_recipe(path) for path in found]

    def _evidence(self, recipe: Recipe) -> Evidence:
        return self.evidence.load(recipe.name, recipe.version, recipe.content_hash())

    def _record(
        self, recipe: Recipe, stage: str, passed: bool, skipped: bool, summary: str, started: float
    ) -> StageResult:
        result = StageResult(
            recipe.name, stage, passed, skipped, summary, time.monotonic() - started, started
        )
        self.results.append(result)
        return result

    # ---- stages

    def build(self, recipe: Recipe) -> StageResult:
        base_tag = self.base_tag  # timed as its own stage
        started = time.monotonic()
        built = images.build_recipe(
            self.client,
            recipe,
            base_tag,
            revision=vcs.revision(self.settings.root),
            source=vcs.source_url(self.settings.root),
            say=self.say,
        )
        evidence = self._evidence(recipe)
        previous = evidence.gates.get("build", {}).get("images", {})
        now = {s: {"ref": b.ref, "id": b.image_id} for s, b in built.items()}
        fresh = any(b.built for b in built.values())
        if previous != now:  # other images than the tested ones: earlier gates no longer hold
            evidence.gates.clear()
        evidence.record(
            "build",
            True,
            f"{len(built)} image(s) on {base_tag}",
            images=now,
            base_image=base_tag,
        )
        self.evidence.save(evidence)
        return self._record(
            recipe,
            "build",
            True,
            not fresh,
            ", ".join(b.image_id[7:19] for b in built.values()),
            started,
        )

    def _images(self, recipe: Recipe) -> dict[str, str]:
        """The recipe's images, built (or found) once per shelf run."""
        if not any(r.recipe == recipe.name and r.stage == "build" for r in self.results):
            self.build(recipe)
        built = self._evidence(recipe).gates["build"]["images"]
        return {service: info["ref"] for service, info in built.items()}

    def test(self, recipe: Recipe, force: bool = False, capture: bool = True) -> StageResult:
        images_ = self._images(recipe)
        started = time.monotonic()
        evidence = self._evidence(recipe)
        done = evidence.gates.get("test")
        if done and done.get("passed") and not force:
            return self._record(recipe, "test", True, True, done["summary"], started)
        run = run_recipe_tests(recipe, images_, self.settings.build_dir / "tests", capture=capture)
        matrix = run_matrix(recipe, images_, self.client, self.released_before(recipe))
        minimum = self.settings.min_level
        passed = run.ok and matrix.level >= minimum
        summary = f"{run.summary}; level {matrix.level}/{MAX_LEVEL} (minimum {minimum})"
        evidence.tools = self.tools
        evidence.record(
            "test",
            passed,
            summary,
            tests_passed=run.passed,
            tests_failed=run.failed + run.errors,
            tests_skipped=run.skipped,
            seconds=round(run.seconds, 1),
            level=matrix.level,
            max_level=MAX_LEVEL,
            min_level=minimum,
            lint=matrix.lint.to_dict() if matrix.lint else None,
            matrix=matrix.to_dict()["checks"],
            matrix_seconds=round(sum(c.seconds for c in matrix.checks), 1),
        )
        self.evidence.save(evidence)
        result = self._record(recipe, "test", passed, False, summary, started)
        if not run.ok and capture:
            result.summary += "\n" + run.output[-3000:]
        for failure in matrix.failures():
            result.summary += f"\nfailed {failure}"
        return result

    def ensure_history(self) -> None:
        """Rebuild the released versions catalog.json lists when this machine never published
        them (a fresh clone), so that upgrade checks start from real released builds."""
        with self._lock:
            if history.needs_rebuild(self.settings):
                history.rebuild(self, self.say)

    def released_before(self, recipe: Recipe) -> Released | None:
        """The newest released version below the candidate, for the upgrade check."""
        self.ensure_history()
        versions = Catalog.load(self.settings.catalog_path).versions(recipe.name)
        candidate = semver.Version.parse(recipe.version)
        older = [v for v in versions if semver.Version.parse(v) < candidate]
        if not older:
            return None
        version = max(older, key=semver.Version.parse)
        folder, _, name = str(versions[version]["compose"]).rpartition("/")
        found = sorted(
            (self.settings.public_dir / "targets" / folder).glob(f"*.{name}"),
            key=lambda path: path.stat().st_mtime,
        )
        return Released(version, found[-1].read_text() if found else "")

    def scan(
        self, recipe: Recipe, force: bool = False, trivy_cache: Path | None = None
    ) -> StageResult:
        """trivy over every image of the recipe; `trivy_cache` picks another vulnerability DB."""
        images_ = self._images(recipe)
        started = time.monotonic()
        evidence = self._evidence(recipe)
        done = evidence.gates.get("scan")
        if done and done.get("passed") and not force and trivy_cache is None:
            return self._record(recipe, "scan", True, True, done["summary"], started)
        cache = trivy_cache or self.settings.trivy_cache
        db = scan.ensure_vuln_db(cache)
        counts: dict[str, int] = {}
        findings: list[dict[str, Any]] = []
        passed = True
        sboms = {}
        for service, ref in sorted(images_.items()):
            report = scan.scan_image(ref, cache_dir=cache, fail_on=GATE_SEVERITY)
            passed = passed and report.passed
            for severity, n in report.counts.items():
                counts[severity] = counts.get(severity, 0) + n
            findings.extend({"service": service, **f} for f in report.to_dict()["findings"])
            sbom_path = self.settings.build_dir / "sbom" / f"{recipe.name}-{service}.cdx.json"
            sboms[service] = scan.sbom_image(ref, cache_dir=cache, out=sbom_path)
        summary = (
            ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()) if n) or "no findings"
        )
        if not db.has_advisories:
            summary += " (vulnerability DB has no advisories offline)"
        evidence.tools = evidence.tools or self.tools
        evidence.record(
            "scan",
            passed,
            summary,
            counts=counts,
            fail_on=GATE_SEVERITY,
            vuln_db=db.describe(),
            sboms=sboms,
            findings=findings[:200],
        )
        self.evidence.save(evidence)
        return self._record(recipe, "scan", passed, False, summary, started)

    def first_failed_gate(self, recipe: Recipe) -> StageResult | None:
        """Build, test and scan in order; the first gate that failed, or None if all passed."""
        for stage in (self.build, self.test, self.scan):
            result = stage(recipe)
            if not result.passed:
                return result
        return None

    def release(
        self, recipes: list[Recipe], rebuilt: history.ReleasedVersion | None = None
    ) -> ReleaseOutcome:
        return release(
            self.settings, self.client, recipes, self.base_tag, say=self.say, rebuilt=rebuilt
        )


# ---- the end-to-end demo


def ensure_catalogue_server(settings: Settings, say: Say = _quiet) -> str:
    """Serve public/ on loopback in the background (what `invoke serve` does in the foreground)."""
    import sys
    import urllib.request

    url = settings.catalogue_url
    note = str(settings.public_dir)
    name = f"catalogue-{settings.catalogue_port}"
    pid = environment.daemon_pid(settings, name)
    pidfile = settings.state_dir / "run" / f"{name}.pid"
    if pid is not None and pidfile.read_text().split(maxsplit=1)[1:] == [note]:
        return url
    environment.stop_daemon(settings, name)
    say(f"Serving {settings.public_dir} at {url}")
    environment.spawn_daemon(
        settings,
        name,
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(settings.public_dir),
            str(settings.catalogue_port),
        ],
        note=note,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/metadata/1.root.json", timeout=2):
                return url
        except OSError:
            time.sleep(0.2)
    raise CommonshelfError(
        f"The catalogue server on {url} did not start.",
        f"another process may hold port {settings.catalogue_port} "
        "(set COMMONSHELF_CATALOGUE_PORT).",
    )


def demo_installation(
    settings: Settings,
    client: docker.DockerClient,
    apps: list[str],
    say: Say = _quiet,
    home: Path | None = None,
    http_port: int = 80,
    namespace: str = "",
) -> list[str]:
    """Subscribe a local installation to the published catalogue and install `apps`. URLs out."""
    url = ensure_catalogue_server(settings, say)
    agent = Agent(home or settings.state_dir / "agent", client)
    root = (settings.public_dir / "metadata" / "1.root.json").read_bytes()
    say(f"Installation: subscribing to {url} (proxy on port {http_port})")
    agent.init(url, root, http_port=http_port, namespace=namespace, force=True)
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

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.stages) and not self.release.refused


@dataclass(frozen=True)
class DemoInstallation:
    """Where the pipeline's local installation lives (tests use their own)."""

    home: Path | None = None  # default: <state dir>/agent
    http_port: int = 80
    namespace: str = ""


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
    shelf.base_tag  # noqa: B018 -- built (or found) once, before the workers start
    workers = max(1, min(jobs or os.cpu_count() or 1, len(recipes)))
    if workers == 1:
        return all([one(recipe) for recipe in recipes])
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vet") as pool:
        return all(list(pool.map(one, recipes)))


def run_pipeline(
    settings: Settings,
    names: list[str] | None = None,
    say: Say = _quiet,
    install: DemoInstallation | None = DemoInstallation(),
) -> PipelineReport:
    """Every recipe through build, test and scan; release what passed; install it locally."""
    started = time.monotonic()
    shelf = Shelf(settings, say)
    recipes = shelf.recipes(names)
    shelf.ensure_history()  # up front, so its rows lead the table
    vet(shelf, recipes)
    outcome = shelf.release(recipes)
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
    )
