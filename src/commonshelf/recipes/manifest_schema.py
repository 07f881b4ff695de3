"""The recipe.yml schema: one validator and one wording, for `load_recipe` and the linter.

`load_recipe` stops at the first problem (a RecipeError); the linter reports every
problem on its own line. Both word a problem through `SchemaProblem.message`, so a
packager reads the same sentence from `invoke lint` as from `invoke build`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from commonshelf.platform.errors import RecipeError

SCHEMA_PATH = Path("schemas") / "recipe.schema.json"


@dataclass(frozen=True)
class SchemaProblem:
    """One way a manifest breaks the schema: the field's path and what is wrong with it."""

    path: tuple[str | int, ...]
    detail: str

    @property
    def where(self) -> str:
        return ".".join(str(p) for p in self.path) or "(top level)"

    @property
    def message(self) -> str:
        return f"field '{self.where}': {self.detail}"


@cache
def _schema(schema_file: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_file.read_text(encoding="utf-8"))
    return loaded


def schema_file_for(recipe_dir: Path) -> Path:
    """The schema of the shelf holding `recipe_dir` (nearest `shared/schemas/` above it),
    else the one in the checkout this package runs from."""
    for parent in recipe_dir.resolve().parents:
        candidate = parent / "shared" / SCHEMA_PATH
        if candidate.is_file():
            return candidate
    return Path(__file__).resolve().parents[3] / "shared" / SCHEMA_PATH


@cache
def validator_for(schema_file: Path) -> jsonschema.Draft202012Validator:
    """The compiled validator of a schema file (read once per process)."""
    return jsonschema.Draft202012Validator(_schema(schema_file))


def schema_problems(manifest: Any, schema_file: Path) -> list[SchemaProblem]:
    """Every schema problem of `manifest`, ordered by field path ([] when it is valid).

    Raises OSError or ValueError when the schema file cannot be read.
    """
    errors = sorted(
        validator_for(schema_file).iter_errors(manifest), key=lambda e: list(e.absolute_path)
    )
    problems = []
    for error in errors:
        described = error.schema.get("description") if isinstance(error.schema, dict) else None
        if error.validator == "pattern" and described:
            detail = f"{error.instance!r} is not valid: {str(described).rstrip('.')}"
        else:
            detail = error.message
        problems.append(SchemaProblem(tuple(error.absolute_path), detail))
    return problems


def validate_manifest(manifest: Any, path: Path, schema_file: Path) -> None:
    """Raise a RecipeError naming the first schema problem (and how many more there are)."""
    problems = schema_problems(manifest, schema_file)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RecipeError(
            f"{path}: {problems[0].message}{more}.",
            f"correct it to match {schema_file.name} (see docs/packaging.md).",
        )
