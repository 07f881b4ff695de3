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
import os
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from commonshelf.catalogue.catalog import Catalog, CatalogError, ReleasedVersion, released_records
from commonshelf.ci.promote import release
from commonshelf.ci.stages import Shelf
from commonshelf.platform.errors import ReleaseError
from commonshelf.platform.fsutil import write_bytes_atomic
from commonshelf.platform.proc import run_bytes
from commonshelf.platform.progress import Say
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import Recipe, load_recipe


def unpublished(settings: Settings, apps: Collection[str] | None = None) -> list[ReleasedVersion]:
    """Released versions (of `apps`, default all) that this machine's signed repository does
    not hold, oldest first per app: what must be rebuilt before their next version's upgrade
    check can start from them."""
    try:
        data = settings.catalog_path.read_bytes()
    except FileNotFoundError:
        return []
    return [
        released
        for released in released_records(data, str(settings.catalog_path))
        if (apps is None or released.app in apps)
        and not (
            settings.public_dir / "targets" / "apps" / released.app / released.version
        ).is_dir()
    ]


def needs_rebuild(settings: Settings, apps: Collection[str] | None = None) -> bool:
    """The catalogue lists releases (of `apps`) that this machine never published."""
    return bool(unpublished(settings, apps))


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
    archived = run_bytes(
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
        what=f"`git archive` of {what}",
        failed=lambda said: (
            f"{what} was released from commit {released.commit[:12]}, which this checkout "
            f"cannot read ({said})."
        ),
        fix="fetch the full history (git fetch --unshallow), or restore public/ and the "
        "registry from the publishing host.",
        error=ReleaseError,
    )
    with tarfile.open(fileobj=io.BytesIO(archived)) as archive:
        archive.extractall(into, filter="data")
    recipe = load_recipe(into / "recipes" / released.app)
    found = recipe.content_hash()  # its folder and the shared services it names, at that commit
    if found != released.content_hash:
        raise ReleaseError(
            f"{what}: the recipe at commit {released.commit[:12]} has content hash "
            f"{found[:12]}, but catalog.json says {released.content_hash[:12]} was released.",
            "catalog.json was edited or points at the wrong commit: restore it from git, or "
            "restore public/ and the registry from the publishing host.",
        )
    return recipe


_REBUILDING = threading.local()


def in_rebuild() -> bool:
    """This thread is rebuilding a released version (whose own upgrade check must not start
    another rebuild)."""
    return bool(getattr(_REBUILDING, "active", False))


def rebuild(shelf: Shelf, say: Say, apps: Collection[str] | None = None, jobs: int = 0) -> None:
    """Rebuild, vet and re-release the released versions of `apps` (default: every app) that
    this machine never published, oldest first per app and apps side by side (`jobs`
    workers, default one per core); the other apps' entries stay as they are.

    On any failure catalog.json is put back as it was, a repository this run started is
    removed, and a ReleaseError says which version failed and why.
    """
    settings = shelf.settings
    history = unpublished(settings, apps)
    if not history:
        return
    original = settings.catalog_path.read_bytes()
    say(
        f"catalog.json lists {len(history)} released version(s) that this machine has not "
        "published: rebuilding them from their commits"
    )
    shelf.base_tag  # noqa: B018 -- its own row in the table, not a released version's
    fresh_repository = not (settings.public_dir / "metadata" / "1.root.json").exists()
    write_bytes_atomic(
        settings.catalog_path, _without(original, settings, history, fresh_repository)
    )
    by_app: dict[str, list[ReleasedVersion]] = {}
    for released in history:  # oldest first within each app
        by_app.setdefault(released.app, []).append(released)
    release_lock = threading.Lock()  # releases write one catalogue, one at a time
    failed = threading.Event()

    def one_app(versions: list[ReleasedVersion], work: Path) -> None:
        _REBUILDING.active = True
        try:
            for index, released in enumerate(versions):
                if failed.is_set():
                    return
                _rebuild_one(shelf, say, released, work / str(index), release_lock)
        except BaseException:
            failed.set()
            raise
        finally:
            _REBUILDING.active = False

    workers = max(1, min(jobs or os.cpu_count() or 1, len(by_app)))
    try:
        with tempfile.TemporaryDirectory(prefix="commonshelf-history-") as work:
            if workers == 1:
                for app, versions in by_app.items():
                    one_app(versions, Path(work) / app)
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="history") as pool:
                    running = [
                        pool.submit(one_app, versions, Path(work) / app)
                        for app, versions in by_app.items()
                    ]
                    for future in running:
                        future.result()  # the first failure, once every app stopped
    except BaseException:
        write_bytes_atomic(settings.catalog_path, original)
        if fresh_repository:
            shutil.rmtree(settings.public_dir, ignore_errors=True)
        raise


def _rebuild_one(
    shelf: Shelf, say: Say, released: ReleasedVersion, into: Path, release_lock: threading.Lock
) -> None:
    """Check out, vet and re-release one released version; ReleaseError when it fails."""
    settings = shelf.settings
    recipe = checkout(settings.root, released, into)
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
        if row.recipe == released.app:  # (apps are rebuilt side by side)
            row.recipe = f"{released.app} {released.version} (released)"
    with release_lock:
        outcome = release(
            settings, shelf.client, [recipe], shelf.base_tag, say=say, rebuilt=released
        )
    if outcome.refused:
        raise ReleaseError(
            f"the rebuilt {released.app} {released.version} was not released: "
            f"{outcome.refused[0][1]}.",
            "restore public/ and the registry from the publishing host.",
        )


def _without(
    original: bytes, settings: Settings, rebuilt: list[ReleasedVersion], fresh_repository: bool
) -> bytes:
    """The catalogue to release the rebuilt versions into: the other apps' entries as they
    were (an older catalogue schema, or a new repository, starts empty)."""
    try:
        catalog = Catalog.from_bytes(original, str(settings.catalog_path))
    except CatalogError:
        return Catalog().to_bytes()
    for app in {released.app for released in rebuilt}:
        catalog.apps.pop(app, None)
    if fresh_repository:
        catalog.platform = {}  # the proxy is published anew with the repository
    return catalog.to_bytes()
