"""Checking out a released version from git: the content hash must match what was released."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from commonshelf.catalogue.catalog import Catalog
from commonshelf.ci.history import ReleasedVersion, checkout, released_versions
from commonshelf.platform.errors import ReleaseError
from commonshelf.recipes.model import content_hash

REPO = Path(__file__).resolve().parents[2]


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


def test_versions_come_oldest_first_and_dirty_commits_name_their_base() -> None:
    catalog = Catalog()
    for version, commit in (("1.10.0+1", "c3-dirty"), ("1.2.0+1", "c2"), ("1.0.0+1", "c1")):
        catalog.add_version("app", {}, version, {"commit": commit, "content_hash": "h"})
    found = released_versions(catalog)
    assert [(r.version, r.commit) for r in found] == [
        ("1.0.0+1", "c1"),
        ("1.2.0+1", "c2"),
        ("1.10.0+1", "c3"),
    ]


def test_checkout_gives_the_released_recipe(repo: tuple[Path, str, str], tmp_path: Path) -> None:
    root, commit, digest = repo
    recipe = checkout(root, ReleasedVersion("custom-html", "1", commit, digest, ""), tmp_path / "o")
    assert recipe.name == "custom-html" and recipe.content_hash() == digest
    assert (tmp_path / "o" / "shared" / "schemas" / "recipe.schema.json").is_file()


def test_other_content_at_the_commit_is_refused(
    repo: tuple[Path, str, str], tmp_path: Path
) -> None:
    root, commit, _ = repo
    released = ReleasedVersion("custom-html", "1.0.0+1", commit, "f" * 64, "")
    with pytest.raises(ReleaseError, match=r"catalog\.json says ffffffffffff was released"):
        checkout(root, released, tmp_path / "o")


@pytest.mark.parametrize("commit", ["", "unknown", "0" * 40])
def test_an_unknown_commit_says_how_to_recover(
    repo: tuple[Path, str, str], tmp_path: Path, commit: str
) -> None:
    root, _, digest = repo
    released = ReleasedVersion("custom-html", "1.0.0+1", commit, digest, "")
    with pytest.raises(ReleaseError, match="publishing host"):
        checkout(root, released, tmp_path / "o")
