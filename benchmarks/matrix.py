"""Time the standard matrix per bundled recipe, and the whole shelf one by one and side by side.

Per recipe: `run_matrix` on the recipe's built images (pushed as candidates, deployed on
Swarm behind a rehearsal proxy), upgrading from the released version that
`./shelf pipeline` published (run it first, or the upgrade check is n/a). Whole shelf:
`vet` (build, the recipe's own tests, matrix, scan) over a temporary shelf holding the
bundled recipes plus scaffolded ones, with one worker and with one per core. Prints
Markdown tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from commonshelf.ci import images
from commonshelf.ci.linting import lint_verdicts
from commonshelf.ci.matrix import run_matrix
from commonshelf.ci.pipeline import open_shelf, vet
from commonshelf.platform import vcs
from commonshelf.platform.settings import Settings
from commonshelf.recipes.scaffold import new_recipe

REPO = Path(__file__).resolve().parents[1]


def per_recipe(runs: int) -> None:
    shelf = open_shelf(Settings.load(REPO))
    verdicts = lint_verdicts(REPO)
    print("| recipe | check | median s | runs |")
    print("| --- | --- | --- | --- |")
    for recipe in shelf.recipes():
        built = images.build_recipe(
            shelf.client,
            recipe,
            shelf.base_tag,
            revision=vcs.revision(REPO),
            source=vcs.source_url(REPO),
        )
        refs = {service: image.ref for service, image in built.items()}
        released = shelf.released_before(recipe)
        candidate = shelf.candidate(recipe, refs)
        timings: dict[str, list[float]] = {}
        probes: list[int] = []
        for _ in range(runs):
            started = time.perf_counter()
            result = run_matrix(
                recipe, candidate, shelf.client, shelf.proxy(), released, verdicts[recipe.name]
            )
            timings.setdefault("matrix total (wall)", []).append(time.perf_counter() - started)
            if not result.passed:
                raise SystemExit(f"{recipe.name}: the matrix failed: {result.failures()}")
            if result.upgrade is not None:
                probes.append(result.upgrade.probes)
            for check in result.checks:
                label = check.check + (" (n/a)" if check.status == "n/a" else "")
                timings.setdefault(label, []).append(check.seconds)
        for label, values in timings.items():
            print(f"| {recipe.name} | {label} | {statistics.median(values):.1f} | {len(values)} |")
        if probes:
            print(
                f"| {recipe.name} | upgrade probes (every 100 ms, none failed) | "
                f"{statistics.median(probes):.0f} | {len(probes)} |"
            )


def whole_shelf(extra: int) -> None:
    settings = Settings.load(REPO)
    print("| whole shelf | recipes | workers | wall s |")
    print("| --- | --- | --- | --- |")
    for workers in (1, os.cpu_count() or 1):
        with tempfile.TemporaryDirectory(prefix="commonshelf-bench-") as tmp:
            root = Path(tmp)
            for name in ("recipes", "shared"):
                shutil.copytree(
                    REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__")
                )
            (root / "pyproject.toml").write_text("[project]\nname = 'bench'\n")
            for index in range(extra):
                new_recipe(root, f"bench-app-{index}")
            shelf = open_shelf(dataclasses.replace(settings, root=root))
            recipes = shelf.recipes()
            for recipe in recipes:  # images built (or found) first: this times the gates
                shelf.build(recipe)
            started = time.perf_counter()
            if not vet(shelf, recipes, jobs=workers):
                raise SystemExit("vet failed: " + "; ".join(r.summary for r in shelf.results))
            wall = time.perf_counter() - started
            print(
                f"| build (cached), tests, matrix, scan | {len(recipes)} | {workers} | {wall:.1f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="matrix runs per recipe")
    parser.add_argument("--extra", type=int, default=3, help="scaffolded recipes in the shelf")
    args = parser.parse_args()
    per_recipe(args.runs)
    print()
    whole_shelf(args.extra)


if __name__ == "__main__":
    main()
