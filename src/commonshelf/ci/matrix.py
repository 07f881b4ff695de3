"""The standard test matrix every recipe gets without its packager writing it.

Checks run in order, the way an installation lives them: the candidate is rendered
by the agent's own code and deployed with `docker stack deploy` behind an
installation proxy, in a namespace of its own (`ci.rehearsal`): install, smoke,
persistence, upgrade (from the released version, probed through the proxy every
100 ms), backup/restore (the recipe's hooks) and removal. Persistence, upgrade and
backup/restore use the recipe's seed hook (`tests/hooks.py` with `seed(app)` and
`verify(app)`), which writes real data through the app's own interface and checks
it is there. Levels are in `ci.levels`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import docker
import docker.errors

from commonshelf.catalogue.contract import UpgradeProof
from commonshelf.ci.evidence import CheckResult
from commonshelf.ci.levels import CHECKS, NOT_APPLICABLE, MatrixResult
from commonshelf.ci.reaper import LABEL_RUN
from commonshelf.ci.rehearsal import (
    Deployable,
    PinnedProxy,
    Prober,
    Rehearsal,
    SwarmApp,
    reap_dead_rehearsals,
)
from commonshelf.installation.backup import back_up, restore_volumes, run_restore_hooks
from commonshelf.installation.state import Installed
from commonshelf.platform.compose_syntax import published_port
from commonshelf.platform.errors import CommonshelfError, DeployError
from commonshelf.recipes.model import Recipe

_HOOKS_LOCK = threading.Lock()  # hooks modules are imported by path, one at a time
PROBE_INTERVAL = 0.1


class CheckFailed(CommonshelfError):
    """A matrix check found the app not doing what it promises."""


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


def replaced_stop_first(released: Deployable, candidate: Deployable) -> tuple[str, ...]:
    """Services the update replaces (another image, or another compose definition) that own an
    exclusive data volume: they restart stop-first, so the app is down meanwhile. Any other
    service must be replaced without one failed request."""
    exclusive = {d.service for d in candidate.runtime.data if d.exclusive}
    old_services = released.compose.get("services") or {}
    new_services = candidate.compose.get("services") or {}
    replaced = []
    for name in sorted(exclusive):
        before, after = released.runtime.services.get(name), candidate.runtime.services.get(name)
        # Swarm replaces a service whose image reference changes, even to the same digest
        same_image = before is not None and after is not None and before.image == after.image
        if not same_image or _definition(old_services.get(name)) != _definition(
            new_services.get(name)
        ):
            replaced.append(name)
    return tuple(replaced)


def _definition(service: Any) -> Any:
    """A compose service without its image (the references are compared on their own)."""
    return {k: v for k, v in service.items() if k != "image"} if isinstance(service, dict) else None


class _Matrix:
    """The checks, in order, on one rehearsal installation; a check that fails or is skipped
    skips the rest (each builds on the state the previous one left)."""

    def __init__(
        self,
        recipe: Recipe,
        candidate: Deployable,
        released: Deployable | None,
        rehearsal: Rehearsal,
    ) -> None:
        self.recipe = recipe
        self.app = recipe.name
        self.candidate = candidate
        self.released = released
        self.rehearsal = rehearsal
        self.deployer = rehearsal.deployer
        self.hooks = load_hooks(recipe)
        self.record: Installed | None = None
        self.before: set[str] = set()  # containers on the engine before the install
        self.image_ids: set[str] = set()
        self.upgrade_proof: UpgradeProof | None = None

    def _deploy(self, version: Deployable) -> Installed:
        self.rehearsal.ensure_proxy()
        try:
            record = self.deployer.deploy_app(
                self.app, version.version, version.runtime, version.compose
            )
        except DeployError as exc:  # the rehearsal is removed next: say what the app said now
            logs = self.deployer.recent_logs(self.app)
            raise CheckFailed(f"{exc.what} Last logs: {logs}" if logs else exc.what) from None
        for image in record.images.values():
            self.image_ids.add(str(self.deployer.client.images.get(image).id))
        self.record = record
        return record

    def _handle(self, version: Deployable) -> SwarmApp:
        return SwarmApp(self.deployer, self.app, version.runtime)

    def _require_hooks(self) -> ModuleType:
        if self.hooks is None:
            raise CheckFailed(f"{self.recipe.tests_dir / 'hooks.py'} is missing.")
        return self.hooks

    def _check_health(self, version: Deployable) -> None:
        path = version.runtime.main.health
        answer = self.deployer.get(self.app, path)
        if answer.status_code != 200:
            raise CheckFailed(f"GET {path} through the proxy answered {answer.status_code}")

    def install(self) -> str:
        self.before = {c.id for c in self.deployer.client.containers.list(all=True, sparse=True)}
        record = self._deploy(self.candidate)
        return f"{len(record.images)} service(s) healthy on Swarm behind the proxy"

    def smoke(self) -> str:
        self._check_health(self.candidate)
        return f"GET {self.candidate.runtime.main.health} through the proxy → 200"

    def persistence(self) -> str:
        if self.hooks is None:
            return "skipped: the recipe has no tests/hooks.py with seed() and verify()"
        app = self._handle(self.candidate)
        self.hooks.seed(app)
        self.hooks.verify(app)
        app.restart()
        self.hooks.verify(app)
        return "seeded data survived a restart of every service"

    def upgrade(self) -> str:
        """The released version, seeded, updated in place to the candidate (start-first where
        the compose file says so) while the proxy is probed every 100 ms."""
        if self.released is None:
            return f"n/a: first release of {self.app}"
        hooks = self._require_hooks()
        self.deployer.remove_app(self.app, (), keep_data=False)
        self._deploy(self.released)
        old = self._handle(self.released)
        hooks.seed(old)
        hooks.verify(old)
        started = time.monotonic()
        stop_first = replaced_stop_first(self.released, self.candidate)
        with Prober(
            self.deployer, self.app, self.candidate.runtime.main.health, PROBE_INTERVAL
        ) as prober:
            self._deploy(self.candidate)
            time.sleep(1.0)  # a second of probes after the switch, on the new tasks
        self.upgrade_proof = UpgradeProof(
            from_version=self.released.version,
            probes=prober.probes,
            failed=prober.failed,
            seconds=round(time.monotonic() - started, 1),
            stop_first=stop_first,
            downtime=prober.downtime,
        )
        hooks.verify(self._handle(self.candidate))
        moved = f"{self.released.version} → {self.candidate.version}"
        if prober.failed and not stop_first:
            shown = ", ".join(sorted(set(prober.failures)))
            raise CheckFailed(
                f"{moved}: {prober.failed} of "
                f"{prober.probes} probes through the proxy failed during the update ({shown})"
            )
        if stop_first:
            return (
                f"{moved} on Swarm: seeded data kept, {prober.probes} probes through the proxy, "
                f"{prober.failed} failed while {', '.join(stop_first)} restarted stop-first "
                f"(exclusive data; {prober.downtime:.1f} s down)"
            )
        return (
            f"{moved} on Swarm: seeded data kept, "
            f"{prober.probes} probes through the proxy, 0 failed"
        )

    def backup_restore(self) -> str:
        """Back up with the recipe's hooks, lose the stack and every volume, restore the
        copies, start again and run the restore hooks: the seeded data must be back."""
        hooks = self._require_hooks()
        record = self.record
        if record is None:
            raise CheckFailed("the app is not running")
        runtime = self.candidate.runtime
        with tempfile.TemporaryDirectory(prefix="commonshelf-backup-") as work:
            made = back_up(self.deployer, record, runtime, Path(work) / "backup")
            self.deployer.remove_app(self.app, (), keep_data=False)  # the machine is lost
            restore_volumes(self.deployer, self.app, record.images, runtime, Path(work) / "backup")
        self._deploy(self.candidate)
        restored = run_restore_hooks(self.deployer, self.app, runtime)
        hooks.verify(self._handle(self.candidate))
        return (
            f"{len(made.volumes)} data volume(s) backed up, wiped and restored "
            f"({made.hooks + restored} backup hook command(s))"
        )

    def removal(self) -> str:
        """Remove the app as an installation does: nothing but its data volumes may remain."""
        data = tuple(d.volume for d in self.candidate.runtime.data)
        kept = set(self.deployer.remove_app(self.app, data, keep_data=True))
        stack = self.deployer.config.stack(self.app)
        client = self.deployer.client
        label = {"label": f"com.docker.stack.namespace={stack}"}
        left = [f"network {n.name}" for n in client.networks.list(filters=label)]
        left += [
            f"volume {v.name}" for v in client.volumes.list(filters=label) if v.name not in kept
        ]
        left += [f"secret {s.name}" for s in client.secrets.list(filters=label)]
        for container in self.stray_containers():
            name = (container.attrs.get("Names") or ["?"])[0].lstrip("/")
            left.append(f"container {name}")
        if left:
            raise CheckFailed(f"left behind after removal: {', '.join(left)}")
        missing = {f"{stack}_{v}" for v in data} - {v.name for v in client.volumes.list()}
        if missing:
            raise CheckFailed(f"removal lost data volumes: {', '.join(sorted(missing))}")
        return "only the declared data volumes remain"

    def stray_containers(self) -> list[Any]:
        """Containers the app started itself through the engine: they carry none of Swarm's
        labels nor a test run's (the recipe's own tests may run the same image alongside),
        are new since the install and run one of the app's images."""
        if not self.image_ids:
            return []
        found = []
        for container in self.deployer.client.containers.list(all=True, sparse=True):
            labels = container.attrs.get("Labels") or {}
            if (
                container.id not in self.before
                and "com.docker.swarm.task.id" not in labels
                and LABEL_RUN not in labels
                and container.attrs.get("ImageID") in self.image_ids
            ):
                found.append(container)
        return found

    def cleanup(self) -> None:
        """Remove what the app started itself (the rehearsal removes the rest)."""
        for container in self.stray_containers():
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True, v=True)


def run_matrix(
    recipe: Recipe,
    candidate: Deployable,
    client: docker.DockerClient,
    proxy: PinnedProxy,
    released: Deployable | None = None,
    lint: CheckResult | None = None,
) -> MatrixResult:
    """Every check of the matrix against a rehearsal installation of `candidate`; the upgrade
    check starts from `released` (None: this is the recipe's first release). `lint` is the
    linter's verdict on the recipe, which counts for the top level only."""
    reap_dead_rehearsals(client)
    published = [
        port[0]
        for version in (candidate, released)
        if version is not None
        for service in (version.compose.get("services") or {}).values()
        for item in (service.get("ports") or [])
        if (port := published_port(item)) is not None
    ]
    rehearsal = Rehearsal(client, uuid.uuid4().hex[:8], proxy, published)
    matrix = _Matrix(recipe, candidate, released, rehearsal)
    results: list[CheckResult] = []
    blocked = ""
    try:
        for name in CHECKS:
            if blocked:
                results.append(
                    CheckResult(check=name, status="skipped", seconds=0.0, detail=blocked)
                )
                continue
            started = time.monotonic()
            try:
                detail: str = getattr(matrix, name)()
            except Exception as exc:  # a failing app, hook or engine call fails this check
                text = str(exc).strip() or repr(exc)
                if not isinstance(exc, AssertionError | CommonshelfError):
                    text = f"{type(exc).__name__}: {text}"
                results.append(
                    CheckResult(
                        check=name,
                        status="failed",
                        seconds=time.monotonic() - started,
                        detail=text[:1500],
                    )
                )
                blocked = f"{name} failed"
                continue
            status, _, rest = detail.partition(": ")
            if status not in ("skipped", NOT_APPLICABLE):
                status, rest = "passed", detail
            results.append(
                CheckResult(
                    check=name,
                    status=status,  # type: ignore[arg-type]
                    seconds=time.monotonic() - started,
                    detail=rest,
                )
            )
            if status == "skipped":
                blocked = f"{name} was skipped"
    finally:
        matrix.cleanup()
        rehearsal.close()
    return MatrixResult(
        recipe=recipe.name,
        version=recipe.version,
        checks=tuple(results),
        lint=lint,
        upgrade=matrix.upgrade_proof,
    )
