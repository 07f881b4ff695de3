"""Packager and CI front door: `invoke --list`. Thin: parse, call commonshelf, print."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from invoke import Context, task
from invoke.exceptions import Exit

from commonshelf.platform import console
from commonshelf.platform.errors import translate
from commonshelf.platform.settings import Settings


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a project error (or a library error translated into one) as one actionable
    line and exit non-zero, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exit:
            raise
        except Exception as exc:  # one actionable line for anything a person can act on
            error = translate(exc)
            if error is None:
                raise
            console.fail(str(error))
            raise Exit(code=2) from None

    return wrapper


def _settings() -> Settings:
    """The shelf of the clone this tasks.py sits in (COMMONSHELF_ROOT still wins), not the
    checkout the shared virtual environment's package was installed from."""
    return Settings.load(default_root=Path(__file__).resolve().parent)


def _shelf() -> Any:
    from commonshelf.ci.pipeline import open_shelf

    return open_shelf(_settings(), say=console.say)


@task(
    help={
        "app": "recipe(s) to lint, comma-separated (default: all)",
        "json": "machine-readable findings",
        "shelf": "lint another shelf folder (one holding recipes/ and catalog.json)",
        "external": "run docker stack config and trivy's secret scan (default: on)",
        "today": "judge waiver expiry as of this day (YYYY-MM-DD; default: today)",
    },
)
@_friendly
def lint(
    c: Context,
    app: str = "",
    json: bool = False,
    shelf: str = "",
    external: bool = True,
    today: str = "",
) -> None:
    """Lint recipes against the numbered rules; exit 1 on any error.

    invoke has no optional positional arguments, so name recipes with --app a,b
    (`./shelf lint a b` does that for you).
    """
    from commonshelf.recipes.lint import lint_shelf

    root = Path(shelf) if shelf else _settings().root
    names = [name for name in app.split(",") if name]
    day = console.parse_day(today) if today else None
    findings = lint_shelf(root, names or None, external=external, today=day)
    errors = [f for f in findings if f.severity == "error"]
    if json:
        console.print_json([f.to_dict() for f in findings])
    else:
        for f in findings:
            colour = "red" if f.severity == "error" else "yellow"
            console.out.print(
                f"[{colour}]{f.rule} {f.severity}[/{colour}] {f.location()}: "
                f"{f.message}\n      fix: {f.fix}",
                soft_wrap=True,
            )
        console.out.print(f"lint: {len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
    if errors:
        raise Exit(code=1)


@task
@_friendly
def docs(c: Context) -> None:
    """Regenerate what is derived from code: the rules table in docs/packaging.md (from the
    linter's rules) and shared/schemas/catalog.schema.json (from the catalogue model)."""
    from commonshelf.catalogue.schema import SCHEMA_FILE, write_schema
    from commonshelf.recipes.lint import update_rules_doc

    root = Path(__file__).resolve().parent
    diff = update_rules_doc(root / "docs" / "packaging.md")
    text = "\n".join(diff) if diff else "docs/packaging.md: rules table up to date"
    console.out.print(text, soft_wrap=True, markup=False, highlight=False)
    changed = write_schema(root)
    console.out.print(f"{SCHEMA_FILE}: {'rewritten' if changed else 'up to date'}")


@task(help={"app": "name of the new recipe (lowercase, dashes)", "title": "display name"})
@_friendly
def new(c: Context, app: str, title: str = "") -> None:
    """Scaffold recipes/APP from shared/template (passes lint, build and test as it is)."""
    from commonshelf.recipes.scaffold import new_recipe

    folder = new_recipe(_settings().root, app, title or None)
    console.out.print(
        f"Created {folder}. Next: invoke lint {app}; invoke build {app}; invoke test {app}"
    )


@task(
    help={
        "app": "recipe to bump",
        "part": "major, minor or patch",
        "upstream": "new upstream version (needs --part minor or major)",
    }
)
@_friendly
def bump(c: Context, app: str, part: str = "patch", upstream: str = "") -> None:
    """Bump a recipe's version and open a CHANGELOG entry for it."""
    from commonshelf.recipes.scaffold import bump_recipe

    old, new_version = bump_recipe(_settings().recipes_dir / app, part, upstream or None)
    console.out.print(
        f"{app}: {old} → {new_version}; describe the change in recipes/{app}/CHANGELOG.md"
    )


@task(help={"app": "recipe to build"})
@_friendly
def build(c: Context, app: str) -> None:
    """Build a recipe's images on the project's base image (skipped when unchanged)."""
    shelf = _shelf()
    for recipe in shelf.recipes([app]):
        shelf.build(recipe)
    console.stage_table(shelf.results, "build")


@task(
    help={
        "app": "recipe to test",
        "force": "run even if this content already passed",
        "json": "print the evidence's test gate (matrix, level, tools) as JSON",
    }
)
@_friendly
def test(c: Context, app: str, force: bool = True, json: bool = False) -> None:
    """Build, then run the recipe's tests and the standard matrix against real containers."""
    shelf = _shelf()
    recipes = shelf.recipes([app])
    results = [shelf.test(recipe, force=force, capture=json) for recipe in recipes]
    records = [
        shelf.evidence.load(recipe.name, recipe.version, recipe.content_hash())
        for recipe in recipes
    ]
    if json:
        console.print_json(
            [
                {**msgspec.to_builtins(r.gates.test or {}), "recipe": r.recipe, "tools": r.tools}
                for r in records
            ]
        )
    else:
        console.stage_table(shelf.results, "test")
        for record in records:
            console.matrix_table(record.recipe, msgspec.to_builtins(record.gates.test or {}))
    if not all(r.passed for r in results):
        raise Exit(code=1)


@task(
    help={
        "app": "recipe to scan",
        "force": "scan even if this content already passed",
        "allow_empty_db": "scan with no or an empty vulnerability DB (local experiments only: "
        "the evidence says so and is never released)",
        "json": "the scan gate as JSON",
    }
)
@_friendly
def scan(
    c: Context, app: str, force: bool = True, allow_empty_db: bool = False, json: bool = False
) -> None:
    """Build, then scan the recipe with trivy (DB pulled from the registry) and judge the
    findings by shared/policy/scan.yml and the recipe's waivers; exit 1 when anything blocks."""
    shelf = _shelf()
    shelf.allow_empty_db = allow_empty_db
    results = [shelf.scan(recipe, force=force) for recipe in shelf.recipes([app])]
    record = shelf.load_evidence(shelf.recipes([app])[0]).gates.scan
    if json:
        console.print_json(msgspec.to_builtins(record))
    else:
        console.stage_table(shelf.results, "scan")
        if record is not None:
            console.scan_table(app, msgspec.to_builtins(record))
    if not all(r.passed for r in results):
        raise Exit(code=1)


@task(help={"mirror_from": "copy this DB artifact (REPOSITORY[:TAG]) instead of building one"})
@_friendly
def vulndb(c: Context, mirror_from: str = "") -> None:
    """Publish the vulnerability DB trivy pulls (REGISTRY/commonshelf/trivy-db:2): built from
    shared/advisories, or mirrored from an upstream DB artifact; then pull it as scans do."""
    from commonshelf.ci import vulndb as db
    from commonshelf.platform import environment

    settings = _settings()
    environment.ensure(settings, swarm=False, say=console.say)  # the registry
    if mirror_from:
        digest = db.mirror(mirror_from, settings.vulndb_repository)
        console.say(f"Mirrored {mirror_from} to {settings.vulndb_repository} ({digest})")
    else:
        digest = db.publish_bundled(settings)
        console.say(f"Published shared/advisories to {settings.vulndb_repository} ({digest})")
    console.say(
        f"Pulled by trivy: {db.pull(settings.trivy_cache, settings.vulndb_repository).describe()}"
    )


@task(help={"json": "what was checked and found, as JSON"})
@_friendly
def rescan(c: Context, json: bool = False) -> None:
    """Check every released version's SBOM against the current vulnerability DB and publish
    the advisories in a newly signed catalogue (nothing is rebuilt)."""
    from commonshelf.ci.rescan import rescan as run_rescan
    from commonshelf.platform import environment

    settings = _settings()
    environment.ensure(settings, swarm=False, say=console.say)  # the registry
    outcome = run_rescan(settings, say=console.say)
    if json:
        console.print_json(msgspec.to_builtins(outcome.__dict__))
        return
    console.advisory_table(msgspec.to_builtins(outcome.advisories))
    state = f"published (targets v{outcome.targets_version})" if outcome.published else "unchanged"
    console.say(
        f"Checked {len(outcome.checked)} released versions against {outcome.db}; "
        f"{len(outcome.new)} new advisories; catalogue {state}."
    )


# ---- channels and revocation: a newly signed catalogue, nothing rebuilt (ci/republish.py)


def _republish(change: Any, json: bool) -> None:
    from commonshelf.ci.republish import republish

    outcome = republish(_settings(), change)
    if outcome.new_keys:
        console.warn(f"generated DEVELOPMENT signing keys ({', '.join(outcome.new_keys)}) in keys/")
    if json:
        console.print_json(msgspec.to_builtins(outcome.__dict__))
    elif not outcome.published:
        console.out.print(outcome.unchanged, soft_wrap=True, markup=False)
    else:
        for note in outcome.notes:
            console.out.print(note.removeprefix("- "), soft_wrap=True, markup=False)
        console.say(f"Catalogue published (targets v{outcome.targets_version}).")


@task(help={"app": "released app", "version": "its testing version", "json": "as JSON"})
@_friendly
def promote(c: Context, app: str, version: str, json: bool = False) -> None:
    """Move a released version from testing to stable (installations on stable get it)."""
    from commonshelf.ci import channels

    _republish(channels.promote(app, version), json)


@task(help={"days": "days in testing before promotion (default 7)", "json": "as JSON"})
@_friendly
def promote_due(c: Context, days: int = 7, json: bool = False) -> None:
    """Promote every testing version released at least DAYS days ago (the scheduled rule)."""
    from commonshelf.ci import channels

    _republish(channels.promote_due(days), json)


@task(
    help={
        "app": "released app",
        "version": "the version to withdraw",
        "reason": "why (installations show it)",
        "json": "as JSON",
    }
)
@_friendly
def revoke(c: Context, app: str, version: str, reason: str = "", json: bool = False) -> None:
    """Withdraw a released version in a newly signed catalogue: installations never install
    it, and those running it move away on their next run."""
    from commonshelf.ci import channels

    _republish(channels.revoke(app, version, reason), json)


@task(
    help={
        "app": "recipes to vet (default: all)",
        "jobs": "recipes vetted side by side (default: one per core)",
        "changed": "only recipes whose content differs from their released version",
    },
    iterable=["app"],
)
@_friendly
def vet(c: Context, app: list[str] | None = None, jobs: int = 0, changed: bool = False) -> None:
    """Build, test and scan recipes; content that already passed is skipped (CI's gate)."""
    from commonshelf.ci.pipeline import unreleased
    from commonshelf.ci.pipeline import vet as run_vet

    shelf = _shelf()
    recipes = shelf.recipes(app or None)
    if changed:
        recipes = unreleased(shelf.settings, recipes)
        names = ", ".join(r.name for r in recipes) or "none"
        console.say(f"Recipes changed since their release: {names}")
    ok = run_vet(shelf, recipes, jobs=jobs)
    console.stage_table(shelf.results, "vet")
    if not ok:
        raise Exit(code=1)


@task(help={"json": "one JSON object per app, for machines"})
@_friendly
def smoke(c: Context, json: bool = False) -> None:
    """Try each app of the local installation through its own protocol (seed, then read back)."""
    import json as json_module

    from commonshelf.ci.pipeline import smoke_installation

    results = smoke_installation(_settings())
    for result in results:
        if json:
            console.out.print(json_module.dumps(result.__dict__), soft_wrap=True)
        else:
            mark = "ok" if result.passed else "FAILED"
            console.out.print(
                f"{mark:6} {result.app} {result.version} ({result.seconds:.1f}s): {result.detail}"
            )
    if not all(r.passed for r in results):
        raise Exit(code=1)


@task(help={"app": "recipes to release (default: all)"}, iterable=["app"])
@_friendly
def release(c: Context, app: list[str] | None = None) -> None:
    """Publish every vetted recipe version to the signed catalogue in public/."""
    from commonshelf.ci.promote import release as promote

    shelf = _shelf()
    recipes = shelf.recipes(app or None)
    outcome = promote(shelf.settings, shelf.client, recipes, shelf.base_tag, say=console.say)
    _print_release(outcome)
    if outcome.refused:
        raise Exit(code=1)


def _print_release(outcome: Any) -> None:
    if outcome.new_keys:
        console.warn(
            f"generated DEVELOPMENT signing keys ({', '.join(outcome.new_keys)}) in "
            "keys/; a public catalogue needs a threshold of offline root keys and online "
            "role keys: `invoke keys.init`, then give CI COMMONSHELF_KEY_TARGETS_PEM, "
            "_SNAPSHOT_PEM and _TIMESTAMP_PEM (ci/README.md)."
        )
    for app, version in outcome.released:
        console.out.print(f"released {app} {version}")
    for app, version in outcome.unchanged:
        console.out.print(f"unchanged {app} {version} (already released)")
    for app, why in outcome.refused:
        console.fail(f"not released {app}: {why}")


@task(help={"port": "port on 127.0.0.1 (default $COMMONSHELF_CATALOGUE_PORT or 8700)"})
@_friendly
def serve(c: Context, port: int = 0) -> None:
    """Serve public/ (the signed repository and its index.html) on 127.0.0.1 in the
    foreground, as a static host would: ETag, Last-Modified and 304, no listings."""
    from commonshelf.catalogue.server import make_server
    from commonshelf.platform.errors import CommonshelfError

    settings = _settings()
    port = port or settings.catalogue_port
    try:
        server = make_server(settings.public_dir, port, log=True)
    except OSError as exc:
        raise CommonshelfError(
            f"Cannot serve on 127.0.0.1:{port} ({exc.strerror or exc}).",
            "pick a free port with --port, or stop the process that holds it.",
        ) from None
    console.out.print(f"Serving {settings.public_dir} at http://127.0.0.1:{port}/ (Ctrl-C stops)")
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@task(
    help={"app": "recipes to run (default: all)", "no_install": "skip the demo installation"},
    iterable=["app"],
)
@_friendly
def pipeline(c: Context, app: list[str] | None = None, no_install: bool = False) -> None:
    """Build, test, scan and release every recipe, then install them on a local installation."""
    from commonshelf.catalogue.refresh_timer import demo_hint
    from commonshelf.ci.pipeline import DemoInstallation, run_pipeline

    settings = _settings()
    report = run_pipeline(
        settings,
        app or None,
        say=console.say,
        install=None if no_install else DemoInstallation(),
    )
    console.stage_table(report.stages)
    _print_release(report.release)
    if report.rescan is not None and any(report.rescan.advisories.values()):
        console.advisory_table(msgspec.to_builtins(report.rescan.advisories))
    console.out.print(f"Catalogue: {report.catalogue_dir} (served at {report.catalogue_url}/)")
    for url in report.app_urls:
        console.out.print(f"App: {url}")
    console.out.print(f"Done in {report.seconds:.0f}s.")
    if not report.passed:
        raise Exit(code=1)
    hint = demo_hint(settings)  # the demo's catalogue lapses a day after its last signing
    if hint:
        console.out.print(hint, soft_wrap=True, markup=False)


# ---- signing keys and their refresh (issue 13): keys.init, keys.rotate, refresh


@task(
    help={
        "offline": "folder for the root keys (default keys/offline/ or "
        "$COMMONSHELF_OFFLINE_KEYS_DIR)",
        "root_keys": "how many root keys (default 3)",
        "threshold": "how many root keys must sign a root (default 2)",
    },
    auto_shortflags=False,
)
@_friendly
def keys_init(c: Context, offline: str = "", root_keys: int = 3, threshold: int = 2) -> None:
    """Make a new repository's keys: root as THRESHOLD of ROOT_KEYS keys kept offline, one
    online key each for targets, snapshot and timestamp, and the 1.root.json to pin."""
    from commonshelf.catalogue.rotation import init_keys

    settings = _settings()
    made = init_keys(
        settings.public_dir,
        settings.keys_dir,
        offline=Path(offline) if offline else None,
        count=root_keys,
        threshold=threshold,
    )
    folder = made.root_keys[0].parent
    console.say(f"Made {made.root}: a root that {made.threshold} of its {root_keys} keys sign.")
    lines = [
        f"Root keys: {folder}/ — move it to offline storage; rotating a key and re-signing "
        f"the root (yearly) need {made.threshold} of them (COMMONSHELF_OFFLINE_KEYS_DIR).",
        *(
            f"{role} key: {path} (in CI: its content as COMMONSHELF_KEY_{role.upper()}_PEM)"
            for role, path in made.online_keys.items()
        ),
        f"Installations pin {made.root}: commonshelf init --root 1.root.json --repository URL",
    ]
    for line in lines:
        console.out.print(line, soft_wrap=True, markup=False)


@task(
    help={
        "role": "root, targets, snapshot or timestamp",
        "offline": "folder of the root keys (default keys/offline/ or "
        "$COMMONSHELF_OFFLINE_KEYS_DIR)",
        "root_keys": "root only: how many new root keys (default: as many as now)",
        "threshold": "root only: the new threshold (default: as now)",
    },
    auto_shortflags=False,
)
@_friendly
def keys_rotate(
    c: Context, role: str, offline: str = "", root_keys: int = 0, threshold: int = 0
) -> None:
    """Replace ROLE's keys in a new root version (signed by the root threshold; for root, by
    the old and the new keys) and publish it, re-signing what it no longer accepts."""
    from commonshelf.catalogue import origin
    from commonshelf.catalogue.rotation import rotate

    settings = _settings()
    origin.sync(settings, console.say)  # a configured published repository becomes public/
    done = rotate(
        settings.public_dir,
        settings.keys_dir,
        role,
        offline=Path(offline) if offline else None,
        count=root_keys,
        threshold=threshold,
    )
    keys = ", ".join(str(path) for path in done.new_keys)
    console.say(
        f"Rotated {role}: root v{done.root_version} trusts {keys} for it "
        f"(threshold {done.threshold}); published {', '.join(done.published.written)}."
    )
    for path in done.removed:
        console.out.print(f"Deleted the revoked key {path}.", soft_wrap=True, markup=False)
    for where in done.revoked_elsewhere:
        console.warn(f"{where} still holds a revoked {role} key: replace or remove it.")


@task(
    help={
        "enable_timer": "then install a systemd timer running `./shelf refresh` every 6 hours "
        "(or say how to schedule it without systemd)",
    },
)
@_friendly
def refresh(c: Context, enable_timer: bool = False) -> None:
    """Re-sign the timestamp (and snapshot, targets or root when due) without a release: the
    scheduled job that keeps installations updating. Changes no target."""
    from commonshelf.catalogue import origin
    from commonshelf.catalogue.refresh_timer import enable_refresh_timer
    from commonshelf.catalogue.signing import Publisher, load_keys

    settings = _settings()
    origin.sync(settings, console.say)  # a configured published repository becomes public/
    result = Publisher(settings.public_dir, load_keys(settings.keys_dir)).refresh()
    for note in result.notes:
        console.warn(note)
    said = ", ".join(result.written) or "nothing was due"
    console.out.print(f"refresh: {said}.", soft_wrap=True, markup=False)
    for role, expires in result.expires.items():
        console.out.print(f"  {role}.json valid until {expires:%Y-%m-%dT%H:%M:%SZ}")
    if enable_timer:
        console.out.print(enable_refresh_timer(settings.root), soft_wrap=True, markup=False)


os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


# ---- the namespace: every task above at the top level, plus `keys.init` and `keys.rotate`
# (dotted names need a Collection). Keep this block last: a task defined below it is unlisted.


def _namespace() -> Any:
    from invoke import Collection, Task

    keys = Collection("keys")
    keys.add_task(keys_init, name="init")
    keys.add_task(keys_rotate, name="rotate")
    flat = [
        t for t in globals().values() if isinstance(t, Task) and t not in (keys_init, keys_rotate)
    ]
    return Collection(*flat, keys)


ns = _namespace()
