"""Rebuilding released versions: which ones the committed catalogue lists (any schema), when a
machine needs them, and checking one out from git (its content hash must match)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from commonshelf.catalogue.catalog import Catalog, ReleasedVersion, released_records
from commonshelf.catalogue.contract import VersionEntry
from commonshelf.ci.history import checkout, needs_rebuild
from commonshelf.platform.errors import ReleaseError
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import content_hash

from ..entries import version_entry

REPO = Path(__file__).resolve().parents[2]
SCHEMA_1 = Path(__file__).parent / "data" / "catalog-schema1.json"


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A one-commit shelf holding custom-html; (path, commit, the recipe's content hash)."""
    root = tmp_path / "repo"
    shutil.copytree(
        REPO / "recipes" / "custom-html",
        root / "recipes" / "custom-html",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copytree(REPO / "shared", root / "shared")
    _git(root.parent, "init", "-q", str(root))
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "recipe")
    return root, _git(root, "rev-parse", "HEAD"), content_hash(root / "recipes" / "custom-html")


def _entry(commit: str) -> VersionEntry:
    return version_entry(
        released="2026-01-01T00:00:00Z", commit=commit, compose="apps/app/compose.yml"
    )


def test_versions_come_oldest_first_and_dirty_commits_name_their_base() -> None:
    catalog = Catalog()
    for version, commit in (("1.10.0+1", "c3-dirty"), ("1.2.0+1", "c2"), ("1.0.0+1", "c1")):
        catalog.add_version("app", "App", "", "tools", version, _entry(commit))
    found = released_records(catalog.to_bytes(), "catalog.json")
    assert [(r.version, r.commit) for r in found] == [
        ("1.0.0+1", "c1"),
        ("1.2.0+1", "c2"),
        ("1.10.0+1", "c3"),
    ]


def _settings(root: Path) -> Settings:
    return Settings(root=root, state_dir=root / "state", registry="r", catalogue_port=1)


def test_a_machine_needs_a_rebuild_only_for_releases_it_never_published(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert not needs_rebuild(settings)  # no catalog.json
    settings.catalog_path.write_bytes(Catalog().to_bytes())
    assert not needs_rebuild(settings)  # nothing released
    catalog = Catalog()
    catalog.add_version("app", "App", "", "tools", "1.0.0+1", _entry("c1"))
    settings.catalog_path.write_bytes(catalog.to_bytes())
    assert needs_rebuild(settings)
    (settings.public_dir / "metadata").mkdir(parents=True)
    (settings.public_dir / "metadata" / "1.root.json").write_text("{}")
    assert needs_rebuild(settings)  # a repository, but without this version
    (settings.public_dir / "targets" / "apps" / "app" / "1.0.0+1").mkdir(parents=True)
    assert not needs_rebuild(settings)  # this machine published it
    assert not needs_rebuild(settings, ["other"])  # nothing released of that app


def test_a_schema_1_catalogue_still_names_what_to_rebuild(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    shutil.copyfile(SCHEMA_1, settings.catalog_path)
    assert needs_rebuild(settings)


def _released(commit: str, digest: str, version: str = "1.0.0+1") -> ReleasedVersion:
    return ReleasedVersion(
        app="custom-html", version=version, commit=commit, content_hash=digest, released=""
    )


def test_checkout_gives_the_released_recipe(repo: tuple[Path, str, str], tmp_path: Path) -> None:
    root, commit, digest = repo
    recipe = checkout(root, _released(commit, digest, "1"), tmp_path / "o")
    assert recipe.name == "custom-html" and recipe.content_hash() == digest
    assert (tmp_path / "o" / "shared" / "schemas" / "recipe.schema.json").is_file()


def test_other_content_at_the_commit_is_refused(
    repo: tuple[Path, str, str], tmp_path: Path
) -> None:
    root, commit, _ = repo
    released = _released(commit, "f" * 64)
    with pytest.raises(ReleaseError, match=r"catalog\.json says ffffffffffff was released"):
        checkout(root, released, tmp_path / "o")


@pytest.mark.parametrize("commit", ["", "unknown", "0" * 40])
def test_an_unknown_commit_says_how_to_recover(
    repo: tuple[Path, str, str], tmp_path: Path, commit: str
) -> None:
    root, _, digest = repo
    released = _released(commit, digest)
    with pytest.raises(ReleaseError, match="publishing host"):
        checkout(root, released, tmp_path / "o")


def test_a_recipe_naming_a_shared_database_is_checked_out_with_it(tmp_path: Path) -> None:
    """Its content hash covers the shared service's definition at that commit too."""
    from commonshelf.recipes.model import load_recipe

    root = tmp_path / "repo"
    shutil.copytree(REPO / "recipes" / "synapse", root / "recipes" / "synapse")
    shutil.copytree(REPO / "shared", root / "shared")
    _git(root.parent, "init", "-q", str(root))
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "recipe")
    released = load_recipe(root / "recipes" / "synapse")
    assert released.platform  # it names the shared postgres service
    record = ReleasedVersion(
        app="synapse",
        version=released.version,
        commit=_git(root, "rev-parse", "HEAD"),
        content_hash=released.content_hash(),
        released="2026-01-01T00:00:00Z",
    )
    assert checkout(root, record, tmp_path / "out").content_hash() == record.content_hash
