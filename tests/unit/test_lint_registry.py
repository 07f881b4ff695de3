"""The linter's rule registry: numbered unique rules, one schema wording shared with
`load_recipe`, the docs table generated from the registry, the shelf linted once."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from commonshelf.platform.errors import RecipeError
from commonshelf.recipes.lint import (
    RULES,
    Finding,
    lint_recipe,
    lint_shelf,
    lint_shelf_by_recipe,
    rule,
    rules_markdown,
)
from commonshelf.recipes.lint.docs import BEGIN, END, rules_block, update_rules_doc
from commonshelf.recipes.lint.registry import RULE_ID
from commonshelf.recipes.lint.shelf import _released_hash, load_released
from commonshelf.recipes.model import load_recipe

REPO = Path(__file__).resolve().parents[2]
SCHEMA_RULES = {"R002", "R003", "R004", "R014"}


@pytest.fixture
def shelf(tmp_path: Path) -> Path:
    shutil.copytree(
        REPO / "recipes", tmp_path / "recipes", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(REPO / "shared", tmp_path / "shared")
    return tmp_path


def _edit(recipe_dir: Path, changes: dict[str, Any], drop: tuple[str, ...] = ()) -> None:
    path = recipe_dir / "recipe.yml"
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    for key in drop:
        del data[key]
    path.write_text(yaml.safe_dump(data))


# ---- the registry


def test_rules_are_numbered_unique_and_in_order() -> None:
    assert list(RULES) == sorted(RULES)
    assert len(RULES) >= 30
    for rule_id, item in RULES.items():
        assert RULE_ID.fullmatch(rule_id) and item.id == rule_id
        assert item.severity in ("error", "warning")
        assert item.title and item.fix.endswith(".")
        assert callable(item.check)
    assert {r.id for r in RULES.values() if r.scope == "external"} == {"R016", "R029"}
    assert {r.id for r in RULES.values() if r.scope == "shelf"} == {"R026"}


def test_a_duplicate_or_unnumbered_id_is_refused_at_registration() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        rule("R001", "error", "again", fix="none.")(lambda recipe: [])
    with pytest.raises(ValueError, match="numbered"):
        rule("X1", "error", "odd", fix="none.")
    assert RULES["R001"].title == "recipe.yml exists and is valid YAML"


def test_each_rule_reports_only_its_own_id(tmp_path: Path) -> None:
    folder = tmp_path / "recipes" / "empty"
    (folder / "tests").mkdir(parents=True)
    (folder / "recipe.yml").write_text("name: [unclosed\n")
    findings = lint_recipe(folder)
    assert {f.rule for f in findings} == {"R001", "R008", "R009", "R015"}
    assert all(f.fix == RULES[f.rule].fix for f in findings)


# ---- one validator, one message


BROKEN_MANIFESTS: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({}, ("description",)),  # a required field missing
    ({"name": "Custom_HTML"}, ()),  # a pattern: the description is the message (R003)
    ({"version": "1.0"}, ()),  # R004
    ({"category": "toys"}, ()),  # an enum
    ({"main": {"service": "app", "port": 0, "health": "/"}}, ()),  # a minimum, nested
    ({"migration": {"kind": "manual"}}, ()),  # R014
    ({"unknown": 1}, ()),  # additional properties
    ({"version": "1.0", "category": "toys", "license": ""}, ()),  # several at once
]


@pytest.mark.parametrize(("changes", "drop"), BROKEN_MANIFESTS)
def test_lint_and_load_recipe_word_a_schema_problem_alike(
    shelf: Path, changes: dict[str, Any], drop: tuple[str, ...]
) -> None:
    folder = shelf / "recipes" / "custom-html"
    _edit(folder, changes, drop)
    findings = lint_shelf(shelf, ["custom-html"], external=False)
    schema = [f for f in findings if f.rule in SCHEMA_RULES]
    assert schema, [f.to_dict() for f in findings]
    with pytest.raises(RecipeError) as caught:
        load_recipe(folder)
    more = f" (and {len(schema) - 1} more)" if len(schema) > 1 else ""
    prefix = f"{folder.resolve() / 'recipe.yml'}: "
    what = caught.value.what
    assert what.startswith(prefix) and what.endswith(f"{more}.")
    assert what[len(prefix) : len(what) - len(more) - 1] in [f.message for f in schema]


# ---- the docs table


def test_the_packaging_guide_table_is_generated_from_the_registry() -> None:
    guide = (REPO / "docs" / "packaging.md").read_text(encoding="utf-8")
    assert BEGIN in guide and END in guide, "docs/packaging.md lost its rules markers"
    assert rules_block(guide) == rules_markdown(), (
        "the rules table in docs/packaging.md differs from the registry: run `./shelf docs`"
    )


def test_update_rules_doc_rewrites_only_the_block(tmp_path: Path) -> None:
    doc = tmp_path / "guide.md"
    doc.write_text(f"# Guide\n\n{BEGIN}\n| old |\n{END}\n\nAfter.\n")
    diff = update_rules_doc(doc)
    assert any(line.startswith("+| R001 |") for line in diff)
    text = doc.read_text()
    assert text.startswith("# Guide\n\n") and text.endswith(f"{END}\n\nAfter.\n")
    assert rules_block(text) == rules_markdown()
    assert update_rules_doc(doc) == []


# ---- the shelf linted once


def test_lint_shelf_by_recipe_hands_each_recipe_its_findings(shelf: Path) -> None:
    _edit(shelf / "recipes" / "custom-html", {}, ("resources",))
    names = sorted(p.name for p in (shelf / "recipes").iterdir() if p.is_dir())
    by_recipe = lint_shelf_by_recipe(shelf, external=False)
    assert sorted(by_recipe) == names
    assert [f.rule for f in by_recipe["custom-html"]] == ["R032"]
    flat: list[Finding] = [f for findings in by_recipe.values() for f in findings]
    assert flat == lint_shelf(shelf, external=False)
    missing = lint_shelf_by_recipe(shelf, ["custom-html", "no-such-app"], external=False)
    assert [f.message for f in missing["no-such-app"]] == ["no such recipe folder"]


def test_released_hash_reads_mapping_and_model_entries() -> None:
    assert _released_hash({"content_hash": "abc"}) == "abc"
    assert _released_hash(SimpleNamespace(content_hash="abc")) == "abc"
    assert _released_hash({}) is None


def test_released_versions_are_read_from_known_catalogue_schemas_only(tmp_path: Path) -> None:
    released = load_released(REPO / "catalog.json")
    assert released is not None and released.versions("custom-html")
    old = load_released(REPO / "tests/fixtures/broken/R005-changed-not-bumped/catalog.json")
    assert old is not None and list(old.versions("fixture-app")) == ["0.1.0+1.22.1"]
    (tmp_path / "future.json").write_text('{"schema": 99, "apps": {}}')
    (tmp_path / "broken.json").write_text('{"schema": 2,')
    for name in ("future.json", "broken.json", "missing.json"):
        assert load_released(tmp_path / name) is None
