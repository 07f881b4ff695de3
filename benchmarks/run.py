"""Re-measure the warm pipeline (everything unchanged) and recipe hashing; print Markdown."""

from __future__ import annotations

import statistics
import time

from commonshelf.ci.pipeline import run_pipeline
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import discover, load_recipe


def _timed(fn: object, repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        runs.append(time.perf_counter() - started)
    return runs


def main() -> None:
    settings = Settings.load()
    run_pipeline(settings, install=None)  # bring everything up to date first
    warm = _timed(lambda: run_pipeline(settings, install=None), 5)
    folders = discover(settings.recipes_dir)
    hashing = _timed(lambda: [load_recipe(f).content_hash() for f in folders], 20)
    print("| measurement | median s | runs |")
    print("| --- | --- | --- |")
    print(f"| warm pipeline (no install) | {statistics.median(warm):.2f} | {len(warm)} |")
    print(f"| load + hash {len(folders)} recipe(s) | {statistics.median(hashing):.4f} | 20 |")


if __name__ == "__main__":
    main()
