"""`invoke new` writes a recipe that passes lint; `invoke bump` follows the version rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from commonshelf.platform.errors import RecipeError
from commonshelf.recipes.lint import lint_shelf
from commonshelf.recipes.model import changelog_entry, load_recipe
from commonshelf.recipes.scaffold import bump_recipe, bumped, new_recipe

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shelf(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "shared", tmp_path / "shared")
    (tmp_path / "recipes").mkdir()
    return tmp_path


def test_new_recipe_passes_every_rule(shelf: Path) -> None:
    folder = new_recipe(shelf, "my-notes")
    recipe = load_recipe(folder)
    assert (recipe.name, recipe.title, recipe.version) == ("my-notes", "My Notes", "0.1.0+1.22.1")
    assert (folder / "tests" / "test_my_notes.py").is_file()
    assert "{{" not in "".join(p.read_text() for p in folder.rglob("*") if p.is_file())
    assert lint_shelf(shelf, ["my-notes"], external=False) == []


@pytest.mark.parametrize("name", ["My_App", "1app", "app-", "a--b", "x" * 41])
def test_bad_names_are_refused(shelf: Path, name: str) -> None:
    with pytest.raises(RecipeError, match="is not a recipe name"):
        new_recipe(shelf, name)
    assert list((shelf / "recipes").iterdir()) == []


def test_an_existing_recipe_is_never_overwritten(shelf: Path) -> None:
    folder = new_recipe(shelf, "taken")
    (folder / "README.md").write_text("mine")
    with pytest.raises(RecipeError, match="already exists"):
        new_recipe(shelf, "taken")
    assert (folder / "README.md").read_text() == "mine"


@pytest.mark.parametrize(
    ("version", "part", "upstream", "expected"),
    [
        ("1.2.3+4.0", "patch", None, "1.2.4+4.0"),
        ("1.2.3+4.0", "minor", None, "1.3.0+4.0"),
        ("1.2.3+4.0", "major", None, "2.0.0+4.0"),
        ("1.2.3+4.0", "minor", "4.1", "1.3.0+4.1"),
    ],
)
def test_bumped(version: str, part: str, upstream: str | None, expected: str) -> None:
    assert bumped(version, part, upstream) == expected


def test_new_upstream_needs_a_minor_bump() -> None:
    with pytest.raises(RecipeError, match="R006"):
        bumped("1.2.3+4.0", "patch", "4.1")


def test_bump_rewrites_the_version_and_opens_a_changelog_entry(shelf: Path) -> None:
    folder = new_recipe(shelf, "my-notes")
    comment = "# Commonshelf recipe manifest"
    assert bump_recipe(folder, "minor", "1.24.0") == ("0.1.0+1.22.1", "0.2.0+1.24.0")
    assert load_recipe(folder).version == "0.2.0+1.24.0"
    assert (folder / "recipe.yml").read_text().startswith(comment)  # comments kept
    assert changelog_entry(folder, "0.2.0+1.24.0")
    assert changelog_entry(folder, "0.1.0+1.22.1")  # history kept
    assert lint_shelf(shelf, ["my-notes"], external=False) == []


def test_the_packaging_guide_explains_every_rule() -> None:
    from commonshelf.recipes.lint import RULES

    guide = (REPO / "docs" / "packaging.md").read_text()
    for rule in RULES.values():
        assert f"| {rule.id} | {rule.severity} | {rule.title} |" in guide
