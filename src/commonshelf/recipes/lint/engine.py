"""Running the rules: each recipe's own, then those across the shelf, then the outside tools.

The linter never raises for a bad recipe: whatever the input, the result is a list
of findings. Each file of a recipe is read and parsed once, however many rules
look at it; the external checks run once per shelf, so linting the whole shelf
once (`lint_shelf_by_recipe`) is much cheaper than linting each recipe apart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

# importing the subject modules registers their rules
from commonshelf.recipes.lint import compose, external, files, manifest, security, shelf
from commonshelf.recipes.lint.context import (
    RecipeContext,
    ReleasedVersions,
    ShelfContext,
    recipe_folders,
)
from commonshelf.recipes.lint.registry import Finding, Hit, collect

SUBJECTS = (manifest, compose, security, files, shelf, external)
RULES = collect()
_RECIPE_RULES = [rule for rule in RULES.values() if rule.scope == "recipe"]


def _sorted(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.recipe, f.rule, f.file, f.line or 0))


def _recipe_findings(recipe: RecipeContext) -> list[Finding]:
    return [finding for rule in _RECIPE_RULES for finding in rule.run_recipe(recipe)]


def lint_recipe(
    folder: Path, root: Path | None = None, catalog: ReleasedVersions | None = None
) -> list[Finding]:
    """The per-recipe rules for one folder (no shelf-wide rules, no external tools)."""
    return _sorted(_recipe_findings(RecipeContext(folder, root or folder.parent.parent, catalog)))


def lint_shelf_by_recipe(
    root: Path,
    names: Iterable[str] | None = None,
    *,
    catalog_path: Path | None = None,
    external: bool = True,
    today: dt.date | None = None,
) -> dict[str, list[Finding]]:
    """Lint the shelf at `root` once and hand each recipe its findings.

    The result has a key for every recipe linted (all of them, or `names`), with an
    empty list for a clean one; each list is in the order `lint_shelf` gives.
    """
    recipes_dir = root / "recipes"
    folders = [recipes_dir / n for n in names] if names else recipe_folders(recipes_dir)
    catalog = shelf.load_released(catalog_path or root / "catalog.json")
    recipes = [RecipeContext(folder, root, catalog, today) for folder in folders]
    found: dict[int, list[Finding]] = {}
    for recipe in recipes:
        if recipe.folder.is_dir():
            found[id(recipe)] = _recipe_findings(recipe)
        else:
            missing = Hit(recipe.folder, "no such recipe folder")
            found[id(recipe)] = [RULES["R001"].finding(recipe, missing)]
    context = ShelfContext(root, [r for r in recipes if r.folder.is_dir()], catalog, today)
    for rule in RULES.values():
        if rule.scope == "shelf" or (external and rule.scope == "external"):
            for recipe, finding in rule.run_shelf(context):
                found[id(recipe)].append(finding)
    by_name: dict[str, list[Finding]] = {}
    for recipe in recipes:
        by_name.setdefault(recipe.name, []).extend(found[id(recipe)])
    return {name: _sorted(findings) for name, findings in by_name.items()}


def lint_shelf(
    root: Path,
    names: Iterable[str] | None = None,
    *,
    catalog_path: Path | None = None,
    external: bool = True,
    today: dt.date | None = None,
) -> list[Finding]:
    """Lint the recipes of the shelf at `root` (all, or `names`)."""
    by_recipe = lint_shelf_by_recipe(
        root, names, catalog_path=catalog_path, external=external, today=today
    )
    return _sorted(finding for findings in by_recipe.values() for finding in findings)
