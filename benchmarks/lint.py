"""Time `lint_shelf` over a shelf of 50 scaffolded recipes; print a Markdown table."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from commonshelf.recipes.lint import lint_shelf
from commonshelf.recipes.scaffold import new_recipe

REPO = Path(__file__).resolve().parents[1]
COUNT = 50


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shelf = Path(tmp)
        shutil.copytree(REPO / "shared", shelf / "shared")
        for index in range(COUNT):
            new_recipe(shelf, f"app-{index:02d}")
        print("| lint of 50 recipes | median s | min s | runs |")
        print("| --- | --- | --- | --- |")
        for label, external in (
            ("all rules (docker stack config + trivy)", True),
            ("--no-external", False),
        ):
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                findings = lint_shelf(shelf, external=external)
                runs.append(time.perf_counter() - started)
                assert findings == [], findings[:3]
            print(f"| {label} | {statistics.median(runs):.2f} | {min(runs):.2f} | {len(runs)} |")


if __name__ == "__main__":
    main()
