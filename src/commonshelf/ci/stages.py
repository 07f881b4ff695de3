"""The CI stages over one recipe — build, test, scan — each recorded in typed evidence.

Each stage records its result in the recipe's evidence record (keyed by content
hash) and skips work whose evidence already exists for the same content, so running
the whole pipeline twice does only what changed. The test stage runs the recipe's
own tests (testcontainers) and the standard matrix (Swarm, behind a proxy).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import docker
import semver

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import ServiceImage
from commonshelf.ci import images, recipe_scan, scan, scan_policy, vulndb
from commonshelf.ci.contract_for import runtime_for
from commonshelf.ci.evidence import (
    BuildGate,
    BuiltImage,
    CheckResult,
    Evidence,
    EvidenceStore,
    TestGate,
    tool_versions,
)
from commonshelf.ci.levels import LINT, MAX_LEVEL
from commonshelf.ci.matrix import run_matrix
from commonshelf.ci.rehearsal import Deployable, PinnedProxy
from commonshelf.ci.runner import run_recipe_tests
from commonshelf.platform import environment, vcs
from commonshelf.platform.errors import RecipeError
from commonshelf.platform.loaders import COMPOSE, load_yaml_bytes
from commonshelf.platform.progress import Say, quiet
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import Recipe, discover, load_recipe

PROXY = "proxy"


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
    say: Say = quiet
    _env: environment.Environment | None = None
    _base: str | None = None
    _tools: dict[str, str] | None = None
    _proxy: PinnedProxy | None = None
    results: list[StageResult] = field(default_factory=list)
    lint_results: dict[str, CheckResult] = field(default_factory=dict)  # linted once, by vet
    # rebuilds the released versions of the named apps this machine never published (ci.history)
    history: Callable[[Collection[str]], None] | None = None
    # Recipes are vetted on threads: the engine, base image and tool versions are set up once.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _workers: threading.local = field(default_factory=threading.local, repr=False)
    allow_empty_db: bool = False  # --allow-empty-db: a local experiment, never released
    _db: scan.VulnDb | None = None
    scans: dict[str, recipe_scan.RecipeScan] = field(default_factory=dict)  # for tables

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

    def load_evidence(self, recipe: Recipe) -> Evidence:
        return self.evidence.load(recipe.name, recipe.version, recipe.content_hash())

    def _record(
        self, recipe: Recipe, stage: str, passed: bool, skipped: bool, summary: str, started: float
    ) -> StageResult:
        result = StageResult(
            recipe.name, stage, passed, skipped, summary, time.monotonic() - started, started
        )
        self.results.append(result)
        return result

    # ---- build

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
        evidence = self.load_evidence(recipe)
        now = {s: BuiltImage(ref=b.ref, id=b.image_id) for s, b in built.items()}
        if evidence.gates.build is None or evidence.gates.build.images != now:
            evidence.gates.test = evidence.gates.scan = None  # they ran other images
        evidence.gates.build = BuildGate(
            passed=True,
            summary=f"{len(built)} image(s) on {base_tag}",
            images=now,
            base_image=base_tag,
        )
        self.evidence.save(evidence)
        fresh = any(b.built for b in built.values())
        ids = ", ".join(b.image_id[7:19] for b in built.values())
        return self._record(recipe, "build", True, not fresh, ids, started)

    def images(self, recipe: Recipe) -> dict[str, str]:
        """The recipe's images (service -> local tag), built (or found) once per shelf run."""
        if not any(r.recipe == recipe.name and r.stage == "build" for r in self.results):
            self.build(recipe)
        gate = self.load_evidence(recipe).gates.build
        if gate is None:
            raise RecipeError(
                f"{recipe.name}: no build evidence.", f"run `invoke build {recipe.name}`."
            )
        return {service: image.ref for service, image in gate.images.items()}

    # ---- what the matrix deploys

    def proxy(self) -> PinnedProxy:
        """The installation proxy of this checkout, pushed to the registry (pinned)."""
        with self._lock:
            if self._proxy is None:
                built = images.build_platform(
                    self.client,
                    self.settings,
                    PROXY,
                    self.base_tag,
                    revision=vcs.revision(self.settings.root),
                    source=vcs.source_url(self.settings.root),
                )
                repository = f"commonshelf/{PROXY}"
                digest = images.push(
                    self.client, built.ref, self.env.registry, repository, built.version
                )
                compose = load_yaml_bytes(
                    (self.settings.shared_dir / PROXY / "compose.yml").read_bytes(),
                    f"shared/{PROXY}/compose.yml",
                    COMPOSE,
                )
                self._proxy = PinnedProxy(compose, f"{self.env.registry}/{repository}@{digest}")
            return self._proxy

    def candidate(self, recipe: Recipe, local: dict[str, str]) -> Deployable:
        """The recipe as an installation would be handed it: images pushed to the project's
        registry as candidates and pinned by digest, its contract built as release builds it."""
        pinned = {}
        for service, ref in sorted(local.items()):
            repository = images.local_repository(recipe, service)
            if service not in recipe.platform:
                # a shared service's image is the released one, under the same name: an
                # update must find its database service unchanged, as installations will
                repository = f"commonshelf/candidates/{repository}"
            tag = recipe.content_hash()[:16]
            digest = images.push(self.client, ref, self.env.registry, repository, tag)
            pinned[service] = ServiceImage(
                image=f"{self.env.registry}/{repository}@{digest}", digest=digest
            )
        return Deployable(recipe.version, runtime_for(recipe, pinned), recipe.compose())

    def released_before(self, recipe: Recipe) -> Deployable | None:
        """The newest released version below the candidate, as installations run it."""
        if self.history is not None:
            self.history([recipe.name])
        catalog = Catalog.load(self.settings.catalog_path)
        versions = catalog.versions(recipe.name)
        candidate = semver.Version.parse(recipe.version)
        older = [v for v in versions if semver.Version.parse(v) < candidate]
        if not older:
            return None
        version = max(older, key=semver.Version.parse)
        entry = versions[version]
        folder, _, name = entry.runtime.compose.rpartition("/")
        found = sorted(
            (self.settings.public_dir / "targets" / folder).glob(f"*.{name}"),
            key=lambda path: path.stat().st_mtime,
        )
        if not found:
            raise RecipeError(
                f"The compose file of the released {recipe.name} {version} is not in "
                f"{self.settings.public_dir}.",
                "restore public/ from the publishing host, or remove public/ to rebuild it.",
            )
        compose = load_yaml_bytes(found[-1].read_bytes(), str(found[-1]), COMPOSE)
        return Deployable(version, entry.runtime, compose)

    # ---- test

    def lint(self, recipe: Recipe) -> CheckResult:
        """The linter's verdict (from the one shelf-wide lint of `vet`, else linted now)."""
        if recipe.name not in self.lint_results:
            from commonshelf.ci.linting import lint_verdicts

            self.lint_results.update(lint_verdicts(recipe.path.parent.parent, [recipe.name]))
        return self.lint_results[recipe.name]

    def test(self, recipe: Recipe, force: bool = False, capture: bool = True) -> StageResult:
        local = self.images(recipe)
        started = time.monotonic()
        evidence = self.load_evidence(recipe)
        done = evidence.gates.test
        if done and done.passed and not force:
            return self._record(recipe, "test", True, True, done.summary, started)
        run = run_recipe_tests(recipe, local, self.settings.build_dir / "tests", capture=capture)
        released = self.released_before(recipe)
        matrix = run_matrix(
            recipe,
            self.candidate(recipe, local),
            self.client,
            self.proxy(),
            released,
            self.lint(recipe),
        )
        minimum = self.settings.min_level
        passed = run.ok and matrix.level >= minimum
        summary = f"{run.summary}; level {matrix.level}/{MAX_LEVEL} (minimum {minimum})"
        evidence = self.load_evidence(recipe)
        evidence.tools = self.tools
        evidence.gates.test = TestGate(
            passed=passed,
            summary=summary,
            tests_passed=run.passed,
            tests_failed=run.failed + run.errors,
            tests_skipped=run.skipped,
            seconds=round(run.seconds, 1),
            level=matrix.level,
            max_level=MAX_LEVEL,
            min_level=minimum,
            lint=matrix.lint,
            matrix=matrix.checks,
            matrix_seconds=round(sum(c.seconds for c in matrix.checks), 1),
            upgrade=matrix.upgrade,
        )
        self.evidence.save(evidence)
        result = self._record(recipe, "test", passed, False, summary, started)
        if not run.ok and capture:
            result.summary += "\n" + run.output[-3000:]
        for failure in matrix.failures():
            result.summary += f"\nfailed {failure}"
        return result

    # ---- scan

    def _trivy_cache(self) -> Path:
        """This thread's own trivy cache (workers never wait on each other's bbolt locks),
        held with a lock for the life of the process, so that vets running side by side in
        other processes take other slots."""
        cache: Path | None = getattr(self._workers, "cache", None)
        if cache is None:
            thread = threading.current_thread().name.replace(" ", "-")
            slot, self._workers.lock = scan.claim_worker_slot(self.settings.trivy_cache, thread)
            cache = self._workers.cache = scan.worker_cache(self.settings.trivy_cache, slot)
        return cache

    def vuln_db(self) -> scan.VulnDb:
        """The vulnerability DB, published to and pulled from the registry once per shelf."""
        with self._lock:
            if self._db is None:
                vulndb.ready(self.settings, allow_empty=self.allow_empty_db)
                self._db = scan.ensure_vuln_db(
                    self.settings.trivy_cache, allow_empty=self.allow_empty_db
                )
            return self._db

    def scan(
        self, recipe: Recipe, force: bool = False, trivy_cache: Path | None = None
    ) -> StageResult:
        """trivy over every image of the recipe, judged by the scan policy; `trivy_cache`
        picks another vulnerability DB (a test's fixture DB)."""
        self.images(recipe)
        started = time.monotonic()
        evidence = self.load_evidence(recipe)
        done = evidence.gates.scan
        if done and done.passed and not force and trivy_cache is None:
            # still valid only for the DB and policy it was judged with (an earlier record,
            # from before the DB came from the registry, has neither)
            policy = scan_policy.load_policy(self.settings.shared_dir)
            if (done.db_digest, done.policy) == (self.vuln_db().digest, policy.digest):
                return self._record(recipe, "scan", True, True, done.summary, started)
        if trivy_cache is None:
            db, cache = self.vuln_db(), self._trivy_cache()
        else:
            db, cache = (
                scan.ensure_vuln_db(trivy_cache, allow_empty=self.allow_empty_db),
                trivy_cache,
            )
        built = evidence.gates.build.images if evidence.gates.build else {}
        result = recipe_scan.scan_recipe(
            recipe,
            built,
            cache_dir=cache,
            db=db,
            scan_store=self.settings.build_dir / "scan-cache",
            evidence=self.evidence,
            content_hash=evidence.content_hash,
            shared_dir=self.settings.shared_dir,
        )
        evidence = self.load_evidence(recipe)
        evidence.tools = evidence.tools or self.tools
        evidence.gates.scan = result.gate
        self.evidence.save(evidence)
        self.scans[recipe.name] = result
        summary = result.gate.summary
        for line in result.verdict.reasons():
            summary += f"\n{line}"
        return self._record(recipe, "scan", result.gate.passed, False, summary, started)

    def first_failed_gate(self, recipe: Recipe) -> StageResult | None:
        """Build, test and scan in order; the first gate that failed, or None if all passed."""
        for stage in (self.build, self.test, self.scan):
            result = stage(recipe)
            if not result.passed:
                return result
        return None


__all__ = ["LINT", "Shelf", "StageResult"]
