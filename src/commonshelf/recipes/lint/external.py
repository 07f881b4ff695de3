"""Rules that ask outside tools: docker's own compose renderer, and trivy's secret scanner.

Both run once per shelf lint (docker on four threads, trivy once over all of
recipes/), and `lint_shelf(..., external=False)` skips them. Both are driven here,
not through `commonshelf.ci`: recipes sit below ci in the layers.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from commonshelf.platform import trivy
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.loaders import REPORT, load_json_bytes
from commonshelf.platform.proc import run
from commonshelf.recipes.lint.context import RecipeContext, ShelfContext, as_dict, as_list
from commonshelf.recipes.lint.registry import Hit, rule

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
    try:
        run(
            ["docker", "stack", "config", "-c", str(folder / "compose.yml")],
            fix="",
            timeout=60,
            failed=lambda said: said.rsplit(" | ", 1)[-1] or "docker stack config failed",
        )
    except CommonshelfError as exc:
        return exc.what
    return None


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


def _committed_secrets(recipes_dir: Path, names: set[str]) -> dict[str, list[tuple[str, str]]]:
    """trivy's secret scanner over the whole shelf at once: recipe -> [(file:line, title)]."""
    from commonshelf.platform.settings import Settings

    out = trivy.run(
        "fs",
        *SECRET_SCAN,
        str(recipes_dir),
        cache_dir=Settings.load().trivy_cache,
        target=f"the secret scan of {recipes_dir}",
        fix="check that trivy runs (`trivy --version`) and its cache dir is writable.",
    )
    report = load_json_bytes(out, "trivy's secret scan report", REPORT)
    found: dict[str, list[tuple[str, str]]] = {}
    for result in as_list(as_dict(report).get("Results")):
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
