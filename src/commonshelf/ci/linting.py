"""The linter's verdict as a matrix input: the shelf linted once, each recipe its verdict.

`vet` lints the whole shelf once before recipes are vetted side by side (the
cross-recipe rules and trivy's secret scan look at every recipe anyway), and
hands each recipe its verdict, which counts for the top level.
"""

from __future__ import annotations

import time
from pathlib import Path

from commonshelf.ci.evidence import CheckResult
from commonshelf.ci.levels import LINT
from commonshelf.recipes.lint import lint_shelf


def lint_verdicts(shelf_root: Path, names: list[str] | None = None) -> dict[str, CheckResult]:
    """recipe -> passed (no errors) or failed (the errors, one line each)."""
    started = time.monotonic()
    findings = lint_shelf(shelf_root, names)
    seconds = time.monotonic() - started
    recipes = set(names or []) | {f.recipe for f in findings}
    if names is None:
        recipes |= {p.name for p in (shelf_root / "recipes").iterdir() if p.is_dir()}
    verdicts = {}
    for recipe in sorted(recipes):
        mine = [f for f in findings if f.recipe == recipe]
        errors = [f for f in mine if f.severity == "error"]
        if errors:
            detail = "; ".join(f"{f.rule} {f.message}" for f in errors)
            verdicts[recipe] = CheckResult(
                check=LINT, status="failed", seconds=seconds, detail=detail[:1500]
            )
        else:
            verdicts[recipe] = CheckResult(
                check=LINT,
                status="passed",
                seconds=seconds,
                detail=f"no errors, {len(mine) - len(errors)} warning(s)",
            )
    return verdicts
