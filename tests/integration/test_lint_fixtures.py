"""Each broken fixture is caught by exactly its rule, with file and line; the shelf is clean."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from commonshelf.recipes.lint import RULES, lint_shelf
from commonshelf.recipes.model import discover

REPO = Path(__file__).resolve().parents[2]
BROKEN = sorted((REPO / "tests" / "fixtures" / "broken").iterdir())
FIXTURE_DAY = dt.date(2026, 11, 22)  # the waiver fixtures' dates are relative to this day
SCHEMA_RULES = {"R002", "R003", "R004", "R014"}  # defects the recipe schema itself rejects
NO_LINE = {"R007", "R008", "R009", "R011", "R015", "R016", "R032"}  # whole-file findings
SCHEMA = json.loads((REPO / "shared/schemas/recipe.schema.json").read_text())


def _rule(fixture: Path) -> str:
    return fixture.name.split("-", 1)[0]


def test_there_is_a_fixture_for_every_rule() -> None:
    assert len(BROKEN) >= 25
    assert {_rule(f) for f in BROKEN} == set(RULES)


def test_the_bundled_shelf_is_clean() -> None:
    assert lint_shelf(REPO, catalog_path=REPO / "catalog.json") == []


@pytest.mark.parametrize("fixture", BROKEN, ids=[f.name for f in BROKEN])
def test_fixture_is_caught_by_exactly_its_rule(fixture: Path) -> None:
    findings = lint_shelf(fixture, today=FIXTURE_DAY)
    rule = _rule(fixture)
    assert {f.rule for f in findings} == {rule}, [f.to_dict() for f in findings]
    for finding in findings:
        assert finding.file.startswith("recipes/fixture-")
        assert finding.fix == RULES[rule].fix
        if rule not in NO_LINE and fixture.name != "R001-no-manifest":
            assert finding.line is not None, finding


WITH_MANIFEST = [f for f in BROKEN if _rule(f) != "R001"]  # R001: no parseable recipe.yml


@pytest.mark.parametrize("fixture", WITH_MANIFEST, ids=[f.name for f in WITH_MANIFEST])
def test_the_schema_judges_each_manifest(fixture: Path) -> None:
    data = yaml.safe_load((fixture / "recipes" / "fixture-app" / "recipe.yml").read_text())
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))
    assert bool(errors) == (_rule(fixture) in SCHEMA_RULES)


def test_the_schema_accepts_every_bundled_recipe() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for folder in discover(REPO / "recipes"):
        assert not list(validator.iter_errors(yaml.safe_load((folder / "recipe.yml").read_text())))


@pytest.mark.parametrize("fixture", BROKEN, ids=[f.name for f in BROKEN])
def test_invoke_lint_exits_non_zero_naming_the_rule(fixture: Path) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "invoke", "lint", "--shelf", str(fixture), "--json"),
            *("--today", FIXTURE_DAY.isoformat()),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    rules = {f["rule"] for f in json.loads(done.stdout)}
    assert _rule(fixture) in rules
    assert "Traceback" not in done.stderr
    expected = 0 if RULES[_rule(fixture)].severity == "warning" else 1
    assert done.returncode == expected, done.stderr
