"""Rebuild the released versions of recipes from the commits the catalogue records.

`catalog.json` travels with the repository, but the registry that holds the
released images, the signed repository (`public/`) and the signing keys live
on the publishing host. On any other machine (a fresh CI runner, a packager's
laptop) the catalogue names images that are not there. Rather than forget what
was released, the pipeline rebuilds each released version from the commit the
catalogue records for it, after checking that the recipe's files at that commit
have exactly the released content hash, and puts it through the same gates and
the same release as new work. The next version's upgrade check then starts from
a real, vetted build of the version users run, on real seeded data.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import semver

from commonshelf.catalogue.catalog import Catalog
from commonshelf.platform.errors import ReleaseError
from commonshelf.platform.fsutil import write_bytes_atomic
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import Recipe, content_hash, load_recipe

if TYPE_CHECKING:
    from commonshelf.ci.pipeline import Shelf

Say = Callable[[str], None]


@dataclass(frozen=True)
class ReleasedVersion:
    """One version as the committed catalogue records it."""

    app: str
    version: str
    commit: str
    content_hash: str
    released: str


def needs_rebuild(settings: Settings) -> bool:
    """The catalogue lists releases that this machine's signed repository does not hold."""
    catalog = Catalog.load(settings.catalog_path)
    return bool(catalog.apps) and not (settings.public_dir / "metadata" / "1.root.json").exists()


def released_versions(catalog: Catalog) -> list[ReleasedVersion]:
    """Every released app version, oldest first within each app."""
    out = []
    for app in sorted(catalog.apps):
        versions = catalog.versions(app)
        for version in sorted(versions, key=semver.Version.parse):
            entry = versions[version]
            out.append(
                ReleasedVersion(
                    app,
                    version,
                    str(entry.get("commit", "")).removesuffix("-dirty"),
                    str(entry.get("content_hash", "")),
                    str(entry.get("released", "")),
                )
            )
    return out


def checkout(repo: Path, released: ReleasedVersion, into: Path) -> Recipe:
    """The recipe folder (and the shared schemas) at the released commit, as a small shelf
    under `into`; fails unless its content hash is the one that was released."""
    what = f"{released.app} {released.version}"
    if len(released.commit) < 7:
        raise ReleaseError(
            f"catalog.json records no commit for {what}, so it cannot be rebuilt.",
            "restore public/ and the registry from the publishing host, "
            "or reset catalog.json to start a new catalogue.",
        )
    done = subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "archive",
            "--format=tar",
            released.commit,
            "--",
            f"recipes/{released.app}",
            "shared",
        ],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise ReleaseError(
            f"{what} was released from commit {released.commit[:12]}, which this checkout "
            f"cannot read ({done.stderr.decode(errors='replace').strip()}).",
            "fetch the full history (git fetch --unshallow), or restore public/ and the "
            "registry from the publishing host.",
        )
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        archive.extractall(into, filter="data")
    folder = into / "recipes" / released.app
    found = content_hash(folder)
    if found != released.content_hash:
        raise ReleaseError(
            f"{what}: the recipe at commit {released.commit[:12]} has content hash "
            f"{found[:12]}, but catalog.json says {released.content_hash[:12]} was released.",
            "catalog.json was edited or points at the wrong commit: restore it from git, or "
            "restore public/ and the registry from the publishing host.",
        )
    return load_recipe(folder)


def rebuild(shelf: Shelf, say: Say) -> None:
    """Rebuild, vet and re-release every version the committed catalogue lists, oldest first.

    `shelf` is a `pipeline.Shelf`. On any failure catalog.json is put back as it was, the
    partial repository is removed, and a ReleaseError says which version failed and why.
    """
    settings = shelf.settings
    original = settings.catalog_path.read_bytes()
    history = released_versions(Catalog.from_bytes(original, str(settings.catalog_path)))
    say(
        f"catalog.json lists {len(history)} released version(s) that this machine has not "
        "published: rebuilding them from their commits"
    )
    shelf.base_tag  # noqa: B018 -- its own row in the table, not a released version's
    write_bytes_atomic(settings.catalog_path, Catalog().to_bytes())
    try:
        with tempfile.TemporaryDirectory(prefix="commonshelf-history-") as work:
            for index, released in enumerate(history):
                recipe = checkout(settings.root, released, Path(work) / str(index))
                say(f"Rebuilding {released.app} {released.version} from {released.commit[:12]}")
                first = len(shelf.results)
                failed = shelf.first_failed_gate(recipe)
                if failed is not None:
                    raise ReleaseError(
                        f"the released {released.app} {released.version} failed its "
                        f"{failed.stage} gate when rebuilt from {released.commit[:12]}: "
                        f"{failed.summary.strip()[:1500]}",
                        "fix the cause (the table above), or restore public/ and the registry "
                        "from the publishing host.",
                    )
                for row in shelf.results[first:]:
                    row.recipe = f"{released.app} {released.version} (released)"
                outcome = shelf.release([recipe], rebuilt=released)
                if outcome.refused:
                    raise ReleaseError(
                        f"the rebuilt {released.app} {released.version} was not released: "
                        f"{outcome.refused[0][1]}.",
                        "restore public/ and the registry from the publishing host.",
                    )
    except BaseException:
        write_bytes_atomic(settings.catalog_path, original)
        shutil.rmtree(settings.public_dir, ignore_errors=True)
        raise
