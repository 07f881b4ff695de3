"""Per recipe: image sizes, a cold build (no layer cache) and a cached one (layer cache, new
tag), and the matrix and own-test times of the newest evidence; Markdown to stdout.

Run from the repository root, after `./shelf pipeline` (the evidence must exist):
    .venv/bin/python benchmarks/recipes.py [APP ...] > benchmarks/recipes.md
A cold build reinstalls everything from Debian, PyPI and npm: minutes per recipe.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import docker

from commonshelf.ci import images
from commonshelf.ci.evidence import EvidenceStore
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import Recipe, discover, load_recipe

BENCH_REPOSITORY = "commonshelf/bench"


def _build(client: docker.DockerClient, context: Path, base_tag: str, nocache: bool) -> float:
    """Seconds to build `context` under a throwaway tag (removed afterwards)."""
    tag = f"{BENCH_REPOSITORY}:{context.parent.name}-{context.name}-{int(time.time() * 1000)}"
    started = time.perf_counter()
    for chunk in client.api.build(
        path=str(context),
        tag=tag,
        buildargs={"BASE_IMAGE": base_tag},
        rm=True,
        forcerm=True,
        pull=False,
        nocache=nocache,
        decode=True,
    ):
        if "error" in chunk:
            raise SystemExit(f"{context}: {chunk['error']}")
    seconds = time.perf_counter() - started
    client.images.remove(tag, noprune=False)
    return seconds


def _contexts(recipe: Recipe) -> list[Path]:
    return [recipe.path / c for c in recipe.builds.values()] + list(recipe.platform.values())


def measure(client: docker.DockerClient, settings: Settings, recipe: Recipe, base: str) -> str:
    built = images.build_recipe(client, recipe, base, revision="bench", source="bench")
    size = sum(int(client.images.get(b.ref).attrs["Size"]) for b in built.values()) / 1e6
    cold = sum(_build(client, ctx, base, nocache=True) for ctx in _contexts(recipe))
    cached = sum(_build(client, ctx, base, nocache=False) for ctx in _contexts(recipe))
    evidence = EvidenceStore(settings.evidence_dir).load(
        recipe.name, recipe.version, recipe.content_hash()
    )
    gate = evidence.gates.test
    own = f"{gate.seconds:.0f}" if gate else "—"  # the recipe's own tests (the matrix apart)
    matrix = f"{gate.matrix_seconds:.0f}" if gate else "—"
    level = str(gate.level) if gate else "—"
    services = ", ".join(sorted(built))
    return (
        f"| {recipe.name} | {recipe.version} | {services} | {size:.0f} | {cold:.0f} | "
        f"{cached:.1f} | {own} | {matrix} | {level} |"
    )


def main(names: list[str]) -> None:
    settings = Settings.load()
    client = docker.from_env()
    base = images.ensure_base_image(client, settings).tag
    folders = [f for f in discover(settings.recipes_dir) if not names or f.name in names]
    print(
        "| recipe | version | services | images MB | cold build s | cached build s "
        "| own tests s | matrix s | level |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for folder in folders:
        print(measure(client, settings, load_recipe(folder), base), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
