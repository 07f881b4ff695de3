"""Packager and CI front door: `invoke --list`. Thin: parse, call commonshelf, print."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from typing import Any

from invoke import Context, task
from invoke.exceptions import Exit

from commonshelf import console
from commonshelf.errors import CommonshelfError
from commonshelf.settings import Settings


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a CommonshelfError as one actionable line and exit non-zero, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CommonshelfError as exc:
            console.fail(str(exc))
            raise Exit(code=2) from None

    return wrapper


def _shelf() -> Any:
    from commonshelf.pipeline import Shelf

    return Shelf(Settings.load(), say=console.say)


@task(
    help={"app": "recipes to lint (default: all)", "json": "machine-readable findings"},
    iterable=["app"],
)
@_friendly
def lint(c: Context, app: list[str] | None = None, json: bool = False) -> None:
    """Lint recipes; exit non-zero on any error."""
    from commonshelf.lint import lint_shelf

    findings = lint_shelf(Settings.load().recipes_dir, app or None)
    if json:
        console.print_json([f.to_dict() for f in findings])
    for f in findings if not json else []:
        console.out.print(
            f"{f.rule} [{f.severity}] {f.recipe}: {f.file}: {f.message}\n      fix: {f.fix}"
        )
    if any(f.severity == "error" for f in findings):
        raise Exit(code=1)
    if not json:
        console.out.print("lint: no errors")


@task(help={"app": "recipe to build"})
@_friendly
def build(c: Context, app: str) -> None:
    """Build a recipe's images on the project's base image (skipped when unchanged)."""
    shelf = _shelf()
    for recipe in shelf.recipes([app]):
        shelf.build(recipe)
    console.stage_table(shelf.results, "build")


@task(help={"app": "recipe to test", "force": "run even if this content already passed"})
@_friendly
def test(c: Context, app: str, force: bool = True) -> None:
    """Build, then run the recipe's tests against real containers."""
    shelf = _shelf()
    results = [shelf.test(recipe, force=force, capture=False) for recipe in shelf.recipes([app])]
    console.stage_table(shelf.results, "test")
    if not all(r.passed for r in results):
        raise Exit(code=1)


@task(help={"app": "recipe to scan", "force": "scan even if this content already passed"})
@_friendly
def scan(c: Context, app: str, force: bool = True) -> None:
    """Build, then scan the recipe's images with trivy; fail on CRITICAL findings."""
    shelf = _shelf()
    results = [shelf.scan(recipe, force=force) for recipe in shelf.recipes([app])]
    console.stage_table(shelf.results, "scan")
    if not all(r.passed for r in results):
        raise Exit(code=1)


@task(help={"app": "recipes to vet (default: all)"}, iterable=["app"])
@_friendly
def vet(c: Context, app: list[str] | None = None) -> None:
    """Build, test and scan recipes; content that already passed is skipped (CI's gate)."""
    from commonshelf.pipeline import vet as run_vet

    shelf = _shelf()
    ok = run_vet(shelf, shelf.recipes(app or None))
    console.stage_table(shelf.results, "vet")
    if not ok:
        raise Exit(code=1)


@task
@_friendly
def release(c: Context) -> None:
    """Publish every vetted recipe version to the signed catalogue in public/."""
    shelf = _shelf()
    outcome = shelf.release(shelf.recipes())
    _print_release(outcome)
    if outcome.refused:
        raise Exit(code=1)


def _print_release(outcome: Any) -> None:
    if outcome.new_keys:
        console.warn(
            f"generated DEVELOPMENT signing keys ({', '.join(outcome.new_keys)}) in "
            "keys/; a public catalogue needs real keys kept offline "
            "(COMMONSHELF_KEY_ROOT, _TARGETS, _SNAPSHOT, _TIMESTAMP)."
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
    """Serve public/ (the signed repository) on 127.0.0.1 in the foreground."""
    import http.server

    settings = Settings.load()
    port = port or settings.catalogue_port
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(settings.public_dir)
    )
    console.out.print(f"Serving {settings.public_dir} at http://127.0.0.1:{port}/ (Ctrl-C stops)")
    with (
        http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server,
        contextlib.suppress(KeyboardInterrupt),
    ):
        server.serve_forever()


@task(
    help={"app": "recipes to run (default: all)", "no_install": "skip the demo installation"},
    iterable=["app"],
)
@_friendly
def pipeline(c: Context, app: list[str] | None = None, no_install: bool = False) -> None:
    """Build, test, scan and release every recipe, then install them on a local installation."""
    from commonshelf.pipeline import DemoInstallation, run_pipeline

    report = run_pipeline(
        Settings.load(),
        app or None,
        say=console.say,
        install=None if no_install else DemoInstallation(),
    )
    console.stage_table(report.stages)
    _print_release(report.release)
    console.out.print(f"Catalogue: {report.catalogue_dir} (served at {report.catalogue_url}/)")
    for url in report.app_urls:
        console.out.print(f"App: {url}")
    console.out.print(f"Done in {report.seconds:.0f}s.")
    if not report.passed:
        raise Exit(code=1)


os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
