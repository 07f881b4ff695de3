"""Cold and warm scan time per bundled image; print a Markdown table.

Cold: a fresh trivy cache (the DB copied in, no layer cache) and an empty result cache, so
trivy reads every layer. Warm: the same image again with the same DB digest: the result
cache answers and trivy does not run. Images are the ones the last `vet` built (their build
evidence); a recipe never built is skipped.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from commonshelf.ci import image_scan, scan, vulndb
from commonshelf.ci.evidence import EvidenceStore
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import discover, load_recipe


def main() -> None:
    settings = Settings.load()
    vulndb.ready(settings)
    store = EvidenceStore(settings.evidence_dir)
    print("| image | cold s | warm s | findings |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for folder in discover(settings.recipes_dir):
            recipe = load_recipe(folder)
            build = store.load(recipe.name, recipe.version, recipe.content_hash()).gates.build
            for service, image in sorted(build.images.items() if build else []):
                cache = Path(tmp) / f"{recipe.name}-{service}"
                shutil.copytree(settings.trivy_cache / "db", cache / "db")
                db = scan.ensure_vuln_db(cache)
                results = Path(tmp) / f"results-{recipe.name}-{service}"
                started = time.perf_counter()
                cold = image_scan.scan_image(
                    image.ref, image.id, cache_dir=cache, db=db, store=results
                )
                cold_s = time.perf_counter() - started
                started = time.perf_counter()
                warm = image_scan.scan_image(
                    image.ref, image.id, cache_dir=cache, db=db, store=results
                )
                warm_s = time.perf_counter() - started
                if cold.cached or not warm.cached:
                    raise SystemExit(f"{image.ref}: the result cache did not behave")
                print(
                    f"| {recipe.name}/{service} | {cold_s:.2f} | {warm_s:.3f} | "
                    f"{len(cold.findings)} |"
                )


if __name__ == "__main__":
    main()
