"""What the rules read: one recipe folder, each file parsed once on first use, and the shelf.

The context knows whether recipe.yml loads and passes the schema, and whether
compose.yml loads and has services; which rule reports what is up to the rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import yaml

from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.loaders import load_with_lines
from commonshelf.recipes.lint.registry import Hit
from commonshelf.recipes.manifest_schema import SchemaProblem, schema_file_for, schema_problems


class ReleasedVersions(Protocol):
    """What the version rules need of the catalogue (a `Catalog` is one): an app's
    released versions, each entry holding the `content_hash` it was released with."""

    def versions(self, app: str) -> Mapping[str, object]: ...


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass
class YamlDoc:
    """A YAML file of the recipe: its data and key lines, or why it could not be loaded."""

    path: Path
    data: Any = None
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)
    error: Hit | None = None

    def line(self, *path: str | int) -> int | None:
        """The line of `path`, else of its nearest parent that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def load_yaml(path: Path) -> YamlDoc:
    """Read and parse a YAML file through the bounded loader; never raises."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return YamlDoc(path, error=Hit(path, f"{path.name} is missing"))
    except (OSError, UnicodeDecodeError) as exc:
        return YamlDoc(path, error=Hit(path, f"{path.name} cannot be read: {exc}"))
    try:
        data, lines = load_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        line = mark.line + 1 if mark else None
        return YamlDoc(path, error=Hit(path, f"invalid YAML: {problem}", line))
    except CommonshelfError as exc:  # the loader refused the input (e.g. beyond its bounds)
        return YamlDoc(path, error=Hit(path, exc.what))
    return YamlDoc(path, data, lines)


@dataclass(frozen=True)
class SchemaCheck:
    """recipe.yml against the schema: its problems, or why the schema could not be read."""

    problems: tuple[SchemaProblem, ...] = ()
    unreadable: str | None = None

    @property
    def passed(self) -> bool:
        return not self.problems and self.unreadable is None


class RecipeContext:
    """One recipe folder as the per-recipe rules see it."""

    def __init__(
        self,
        folder: Path,
        root: Path,
        catalog: ReleasedVersions | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.folder = folder
        self.root = root
        self.catalog = catalog
        self.today = today or dt.date.today()
        self.name = folder.name
        self._docs: dict[str, YamlDoc] = {}

    def __repr__(self) -> str:
        return f"RecipeContext({self.folder})"

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def yaml(self, name: str) -> YamlDoc:
        """The YAML file `name` of the recipe folder, parsed once."""
        doc = self._docs.get(name)
        if doc is None:
            doc = self._docs[name] = load_yaml(self.folder / name)
        return doc

    @property
    def manifest_doc(self) -> YamlDoc:
        return self.yaml("recipe.yml")

    @property
    def compose_doc(self) -> YamlDoc:
        return self.yaml("compose.yml")

    @cached_property
    def schema_check(self) -> SchemaCheck | None:
        """None when recipe.yml did not load or is not a mapping of fields."""
        doc = self.manifest_doc
        if doc.error is not None or not isinstance(doc.data, dict):
            return None
        try:
            problems = schema_problems(doc.data, schema_file_for(self.folder))
        except (OSError, ValueError) as exc:
            return SchemaCheck(unreadable=str(exc))
        return SchemaCheck(tuple(problems))

    @cached_property
    def manifest(self) -> dict[str, Any] | None:
        """recipe.yml's fields when it passes the schema, else None."""
        check = self.schema_check
        if check is None or not check.passed:
            return None
        manifest: dict[str, Any] = self.manifest_doc.data
        return manifest

    @cached_property
    def compose(self) -> dict[str, Any] | None:
        """compose.yml when it loads and has a mapping of service definitions, else None."""
        doc = self.compose_doc
        if doc.error is not None or not isinstance(doc.data, dict):
            return None
        services = doc.data.get("services")
        if (
            not isinstance(services, dict)
            or not services
            or not all(isinstance(spec, dict) for spec in services.values())
        ):
            return None
        compose: dict[str, Any] = doc.data
        return compose


class ShelfContext:
    """The shelf as the shelf-wide and external rules see it."""

    def __init__(
        self,
        root: Path,
        linted: list[RecipeContext],
        catalog: ReleasedVersions | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.root = root
        self.recipes_dir = root / "recipes"
        self.linted = linted  # the recipes being linted (folders that exist)
        self.catalog = catalog
        self.today = today

    def every_recipe(self) -> list[RecipeContext]:
        """Every folder of the shelf (the linted ones' contexts reused), e.g. to count ports."""
        by_name = {recipe.name: recipe for recipe in self.linted}
        return [
            by_name.get(folder.name) or RecipeContext(folder, self.root, None, self.today)
            for folder in recipe_folders(self.recipes_dir)
        ]


def recipe_folders(recipes_dir: Path) -> list[Path]:
    """Every folder under recipes/ (with or without a recipe.yml: a missing one is R001)."""
    if not recipes_dir.is_dir():
        return []
    return sorted(p for p in recipes_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
