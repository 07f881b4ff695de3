"""The loader and linter never show a traceback: random YAML and random mutations of a valid
recipe give findings or a RecipeError, nothing else."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commonshelf.platform.errors import RecipeError
from commonshelf.recipes.lint import lint_shelf
from commonshelf.recipes.model import load_recipe

REPO = Path(__file__).resolve().parents[2]
VALID = REPO / "recipes" / "custom-html"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.text(max_size=12),
    st.floats(allow_nan=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _check(folder: Path) -> None:
    findings = lint_shelf(folder.parent.parent, [folder.name], external=False)
    assert all(f.rule.startswith("R") and f.message for f in findings)
    try:
        load_recipe(folder)
    except RecipeError as exc:
        assert exc.what


def _shelf(tmp: str) -> Path:
    folder = Path(tmp) / "recipes" / "custom-html"
    shutil.copytree(VALID, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifest=st.text(max_size=200), compose=st.text(max_size=200))
def test_random_text_as_recipe_files(manifest: str, compose: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _shelf(tmp)
        (folder / "recipe.yml").write_text(manifest)
        (folder / "compose.yml").write_text(compose)
        _check(folder)


def _mutate(document: Any, path: list[str | int], value: Any, delete: bool) -> Any:
    node = document
    for step in path[:-1]:
        node = node[step]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


def _paths(node: Any, prefix: list[str | int]) -> list[list[str | int]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, [*prefix, key])
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, [*prefix, index])
    return found


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from(["recipe.yml", "compose.yml"]),
    pick=st.integers(0, 10_000),
    value=values,
    delete=st.booleans(),
)
def test_random_mutations_of_a_valid_recipe(
    which: str, pick: int, value: Any, delete: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _shelf(tmp)
        document = yaml.safe_load((folder / which).read_text())
        paths = _paths(document, [])
        mutated = _mutate(document, paths[pick % len(paths)], value, delete)
        (folder / which).write_text(yaml.safe_dump(mutated))
        _check(folder)
