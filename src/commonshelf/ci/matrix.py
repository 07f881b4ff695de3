"""The standard test matrix every recipe gets without its packager writing it.

Checks run in order on the recipe's whole stack (every service, network and
volume of compose.yml, through the harness): install, smoke, persistence,
upgrade, backup/restore and removal. Persistence, upgrade and backup/restore use
the recipe's seed hook (`tests/hooks.py` with `seed(app)` and `verify(app)`),
which writes real data through the app's own interface and checks it is there.

The level is cumulative, like YunoHost's: the number of checks passed in a row
from the first, plus one when every check passed and the recipe is lint-clean
(no lint errors). A recipe that installs but loses data on restart is level 2;
the top level, `MAX_LEVEL`, is what CI requires by default before a release.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import docker

from commonshelf.ci.containers import RunningStack, start_stack
from commonshelf.ci.reaper import LABEL_RUN, LABEL_SCOPE, new_scope, run_labels
from commonshelf.installation.volumes import archive_volume, restore_volume
from commonshelf.platform.errors import CommonshelfError
from commonshelf.recipes.model import Recipe, load_recipe, schema_file_for

CHECKS = ("install", "smoke", "persistence", "upgrade", "backup_restore", "removal")
LINT = "lint"
MAX_LEVEL = len(CHECKS) + 1  # every check passed, and no lint errors
NOT_APPLICABLE = "n/a"  # the upgrade check of a recipe's first release: counts as passed
_HOOKS_LOCK = threading.Lock()  # hooks modules are imported by path, one at a time


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: str  # passed | failed | skipped | n/a
    seconds: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Released:
    """The version an installation runs today: its pinned compose file (images by digest)."""

    version: str
    compose: str  # the released compose.yml text


@dataclass(frozen=True)
class MatrixResult:
    recipe: str
    version: str
    checks: tuple[CheckResult, ...]
    lint: CheckResult | None = None  # None: not linted (counts as not clean)

    @property
    def level(self) -> int:
        """Checks passed in a row from the first (skipped ones end the run too), plus one
        for a lint-clean recipe that passed them all."""
        level = 0
        for result in self.checks:
            if result.status not in ("passed", NOT_APPLICABLE):
                return level
            level += 1
        return level + (1 if self.lint is not None and self.lint.status == "passed" else 0)

    @property
    def passed(self) -> bool:
        """Every check of the matrix passed (lint is judged by the level)."""
        return all(r.status in ("passed", NOT_APPLICABLE) for r in self.checks)

    def failures(self) -> list[str]:
        """'<check>: <why>' for each failed check, lint included."""
        every = [*self.checks, *([self.lint] if self.lint else [])]
        return [f"{c.check}: {c.detail}" for c in every if c.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "version": self.version,
            "level": self.level,
            "max_level": MAX_LEVEL,
            "passed": self.passed,
            "lint": self.lint.to_dict() if self.lint else None,
            "checks": [c.to_dict() for c in self.checks],
        }


def load_hooks(recipe: Recipe) -> ModuleType | None:
    """The recipe's `tests/hooks.py` (seed/verify), or None when it has none."""
    path = recipe.tests_dir / "hooks.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"commonshelf_hooks_{recipe.name}", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    with _HOOKS_LOCK:
        spec.loader.exec_module(module)
    return module


def lint_check(recipe: Recipe) -> CheckResult:
    """The recipe linter's verdict as a check: passed when it finds no errors."""
    from commonshelf.recipes.lint import lint_shelf

    started = time.monotonic()
    findings = lint_shelf(recipe.path.parent.parent, [recipe.path.name])
    errors = [f for f in findings if f.severity == "error"]
    seconds = time.monotonic() - started
    if errors:
        detail = "; ".join(f"{f.rule} {f.message}" for f in errors)
        return CheckResult(LINT, "failed", seconds, detail[:1500])
    warnings = len(findings) - len(errors)
    return CheckResult(LINT, "passed", seconds, f"no errors, {warnings} warning(s)")


class _Matrix:
    """The checks, in order, sharing one stack; a check that fails or is skipped skips the rest
    (each builds on the state the previous one left)."""

    def __init__(
        self,
        recipe: Recipe,
        images: dict[str, str],
        client: docker.DockerClient,
        released: Released | None,
    ) -> None:
        self.released = released
        self.recipe = recipe
        self.images = images
        self.client = client
        self.hooks = load_hooks(recipe)
        self.scope = new_scope(recipe.name)
        self.stack: RunningStack | None = None
        self.volumes: dict[str, str] = {}
        self.image_ids: set[str] = set()  # every image a stack of this matrix ran
        self.before: set[str] = set()  # containers on the engine before the install
        self.leftovers: list[Any] = []  # containers found by the removal check

    def _start(
        self, recipe: Recipe, images: dict[str, str], volumes: dict[str, str] | None = None
    ) -> RunningStack:
        stack = start_stack(recipe, images, self.client, volumes=volumes, scope=self.scope)
        for service in stack.services.values():
            self.image_ids.add(str(service.docker_container.attrs["Image"]))
        return stack

    @property
    def app(self) -> RunningStack:
        assert self.stack is not None, "the stack is not running"
        return self.stack

    def install(self) -> str:
        self.before = {c.id for c in self.client.containers.list(all=True, sparse=True)}
        self.stack = self._start(self.recipe, self.images)
        self.volumes = dict(self.stack.volumes)
        return f"{len(self.stack.services)} service(s) healthy"

    def smoke(self) -> str:
        path = self.recipe.main.health
        answer = self.app.get(path)
        assert answer.status_code == 200, f"GET {path} answered {answer.status_code}"
        return f"GET {path} → 200"

    def persistence(self) -> str:
        if self.hooks is None:
            return "skipped: the recipe has no tests/hooks.py with seed() and verify()"
        self.hooks.seed(self.app)
        self.hooks.verify(self.app)
        self.app.restart()
        self.hooks.verify(self.app)
        return "seeded data survived a restart of every service"

    def upgrade(self) -> str:
        """The released version, seeded, replaced by the candidate on the same volumes."""
        if self.released is None:
            return f"n/a: first release of {self.recipe.name}"
        assert self.hooks is not None
        assert self.released.compose, (
            f"the compose file of the released {self.released.version} is not in public/; "
            "restore public/ from the publishing host"
        )
        self.app.stop()
        self.stack = None
        for name in self.volumes.values():
            with contextlib.suppress(docker.errors.NotFound):
                self.client.volumes.get(name).remove(force=True)
        with tempfile.TemporaryDirectory(prefix="commonshelf-released-") as work:
            folder = Path(work) / self.recipe.name
            shutil.copytree(self.recipe.path, folder)
            (folder / "compose.yml").write_text(self.released.compose)
            old_recipe = load_recipe(folder, schema_file_for(self.recipe.path))
            compose = old_recipe.compose()
            for spec in compose["services"].values():
                image = str(spec.get("image", ""))
                with contextlib.suppress(docker.errors.ImageNotFound):
                    self.client.images.get(image)
                    continue
                self.client.images.pull(image)  # the project's own registry, by digest
            old = self._start(old_recipe, {})
        self.volumes = dict(old.volumes)
        self.hooks.seed(old)
        self.hooks.verify(old)
        old.stop(keep_volumes=True)
        self.stack = self._start(self.recipe, self.images, volumes=self.volumes)
        self.volumes = dict(self.stack.volumes)
        self.hooks.verify(self.app)
        return f"{self.released.version} → {self.recipe.version}: seeded data kept, healthy"

    def backup_restore(self) -> str:
        """Run the backup hooks, copy the data volumes, lose everything, restore the copies,
        start again and run the restore hooks: the seeded data must be back."""
        assert self.hooks is not None
        backup = self.recipe.manifest.get("backup") or {}
        for command in backup.get("pre", []):
            self.app.exec(command, service=backup["service"])
        with tempfile.TemporaryDirectory(prefix="commonshelf-backup-") as work:
            archives = {}
            for data in self.recipe.data:
                archives[data.volume] = Path(work) / f"{data.volume}.tar"
                archive_volume(
                    self.client,
                    self.images[data.service],
                    self.volumes[data.volume],
                    archives[data.volume],
                )
            for command in backup.get("post", []):
                self.app.exec(command, service=backup["service"])
            self.app.stop()  # containers, network and every volume: the machine is lost
            self.stack = None
            for data in self.recipe.data:
                self.client.volumes.create(self.volumes[data.volume], labels=run_labels(self.scope))
                restore_volume(
                    self.client,
                    self.images[data.service],
                    self.volumes[data.volume],
                    archives[data.volume],
                )
        self.stack = self._start(self.recipe, self.images, volumes=self.volumes)
        for command in backup.get("restore", []):
            self.app.exec(command, service=backup["service"])
        self.hooks.verify(self.app)
        hooks = sum(len(backup.get(k, [])) for k in ("pre", "post", "restore"))
        return (
            f"{len(self.recipe.data)} data volume(s) backed up, wiped and restored "
            f"({hooks} backup hook command(s))"
        )

    def removal(self) -> str:
        """Remove the app as an installation would: its containers, network and every volume
        but the declared data volumes. Nothing else the app made may remain."""
        self.app.stop(keep_volumes=True)
        self.stack = None
        data = {self.volumes[d.volume] for d in self.recipe.data if d.volume in self.volumes}
        for name in set(self.volumes.values()) - data:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.volumes.get(name).remove(force=True)
        scoped = {"label": f"{LABEL_SCOPE}={self.scope}"}
        # Containers the app started itself carry no labels of ours: new since the install,
        # not another test run's, not a Swarm task, and running one of the app's images.
        # (Sparse listings: a container removed meanwhile must not fail the check.)
        self.leftovers = []
        for container in self.client.containers.list(all=True, sparse=True):
            labels = container.attrs.get("Labels") or {}
            if container.id in self.before:
                continue
            if labels.get(LABEL_SCOPE) == self.scope or (
                LABEL_RUN not in labels
                and "com.docker.swarm.task.id" not in labels
                and container.attrs.get("ImageID") in self.image_ids
            ):
                self.leftovers.append(container)
        left = [
            f"container {(c.attrs.get('Names') or ['?'])[0].lstrip('/')} "
            f"({c.attrs.get('Command', '')})"
            for c in self.leftovers
        ]
        left += [f"network {n.name}" for n in self.client.networks.list(filters=scoped)]
        left += [
            f"volume {v.name}"
            for v in self.client.volumes.list(filters=scoped)
            if v.name not in data
        ]
        assert not left, f"left behind after removal: {', '.join(left)}"
        return "only the declared data volumes remain"

    def cleanup(self) -> None:
        """Remove everything this matrix made, leftovers and data volumes included."""
        if self.stack is not None:
            self.stack.stop()
        for container in self.leftovers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        for name in self.volumes.values():
            with contextlib.suppress(docker.errors.NotFound):
                self.client.volumes.get(name).remove(force=True)


def run_matrix(
    recipe: Recipe,
    images: dict[str, str],
    client: docker.DockerClient,
    released: Released | None = None,
    lint: bool = True,
) -> MatrixResult:
    """Every check of the matrix against fresh containers of `images`; the upgrade check
    starts from `released` (None: this is the recipe's first release). `lint` also runs
    the recipe linter, whose verdict counts for the top level only."""
    lint_result = lint_check(recipe) if lint else None
    matrix = _Matrix(recipe, images, client, released)
    results: list[CheckResult] = []
    blocked = ""
    try:
        for name in CHECKS:
            if blocked:
                results.append(CheckResult(name, "skipped", 0.0, blocked))
                continue
            started = time.monotonic()
            try:
                detail = getattr(matrix, name)()
            except Exception as exc:  # a failing app, hook or engine call fails this check
                text = str(exc).strip() or repr(exc)
                if not isinstance(exc, AssertionError | CommonshelfError):
                    text = f"{type(exc).__name__}: {text}"
                results.append(CheckResult(name, "failed", time.monotonic() - started, text[:1500]))
                blocked = f"{name} failed"
                continue
            status, _, rest = detail.partition(": ")
            if status not in ("skipped", NOT_APPLICABLE):
                status, rest = "passed", detail
            results.append(CheckResult(name, status, time.monotonic() - started, rest))
            if status == "skipped":
                blocked = f"{name} was skipped"
    finally:
        matrix.cleanup()
    return MatrixResult(recipe.name, recipe.version, tuple(results), lint_result)
