"""Reading untrusted YAML and JSON: one bounded loader per kind of input.

Recipes come from pull requests, catalogues and compose files from mirrors, state
from disk a crash may have cut short. Every reader goes through here so each kind
of input has one place that bounds it and one wording for its errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from commonshelf.platform.errors import RecipeError


def _yaml_error(path: Path, exc: yaml.YAMLError) -> RecipeError:
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return RecipeError(f"{where}: invalid YAML ({problem}).", "fix the syntax at that line.")


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(
            f"{path} is missing.", f"create {path.name} (see docs/packaging.md)."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(
            f"{path} cannot be read: {exc}.", "make it a readable UTF-8 file."
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None


Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it


def load_with_lines(text: str) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """Parse YAML once: the data, and the 1-based line of every key and item by path."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*path, index)] = item.start_mark.line + 1
                walk(item, (*path, index))

    loader = Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    if root is not None:
        walk(root, ())
    return data, lines


def line_map(text: str) -> dict[tuple[str | int, ...], int]:
    """1-based line of every mapping key and sequence item, by path ({} for invalid YAML)."""
    try:
        return load_with_lines(text)[1]
    except yaml.YAMLError:
        return {}
