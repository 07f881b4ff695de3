"""Lint rules as registered functions: each carries its id, severity, title and fix.

A rule is a generator decorated with `@rule(...)`. Its scope says what it is given:

- "recipe": one `RecipeContext`; it yields a `Hit` per problem in that recipe;
- "shelf": the `ShelfContext`; it yields `(recipe, Hit)` pairs (rules across recipes);
- "external": like "shelf", but it runs a slow outside tool (`external=False` skips it).

A rule yields findings of its own id only; the engine adds the severity and the fix.
Ids are unique and numbered R001, R002, …: a duplicate or a malformed id fails at import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, overload

if TYPE_CHECKING:
    from commonshelf.recipes.lint.context import RecipeContext, ShelfContext

Severity = Literal["error", "warning"]
Scope = Literal["recipe", "shelf", "external"]
RULE_ID = re.compile(r"R\d{3}")


@dataclass(frozen=True)
class Hit:
    """What a check found: the file, what is wrong and (where one applies) the line."""

    path: Path
    message: str
    line: int | None = None


RecipeCheck = Callable[["RecipeContext"], Iterable[Hit]]
ShelfCheck = Callable[["ShelfContext"], Iterable[tuple["RecipeContext", Hit]]]


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    recipe: str
    file: str
    line: int | None
    message: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    fix: str
    check: RecipeCheck | ShelfCheck = field(repr=False, compare=False)
    scope: Scope = "recipe"

    def finding(self, recipe: RecipeContext, hit: Hit) -> Finding:
        return Finding(
            self.id,
            self.severity,
            recipe.name,
            recipe.rel(hit.path),
            hit.line,
            hit.message,
            self.fix,
        )

    def run_recipe(self, recipe: RecipeContext) -> list[Finding]:
        """The findings of a per-recipe rule."""
        if self.scope != "recipe":
            raise TypeError(f"{self.id} is a {self.scope} rule, not a per-recipe one")
        return [self.finding(recipe, hit) for hit in cast(RecipeCheck, self.check)(recipe)]

    def run_shelf(self, shelf: ShelfContext) -> list[tuple[RecipeContext, Finding]]:
        """The findings of a shelf or external rule, with the recipe each belongs to."""
        if self.scope == "recipe":
            raise TypeError(f"{self.id} is a per-recipe rule, not a {self.scope} one")
        return [
            (recipe, self.finding(recipe, hit))
            for recipe, hit in cast(ShelfCheck, self.check)(shelf)
        ]


_REGISTERED: dict[str, Rule] = {}


@overload
def rule(
    id: str, severity: Severity, title: str, *, fix: str, scope: Literal["recipe"] = ...
) -> Callable[[RecipeCheck], RecipeCheck]: ...


@overload
def rule(
    id: str, severity: Severity, title: str, *, fix: str, scope: Literal["shelf", "external"]
) -> Callable[[ShelfCheck], ShelfCheck]: ...


def rule(
    id: str, severity: Severity, title: str, *, fix: str, scope: Scope = "recipe"
) -> Callable[[Any], Any]:
    """Register the decorated check function as rule `id` (see the module docstring)."""
    if not RULE_ID.fullmatch(id):
        raise ValueError(f"rule id {id!r} is not numbered like R001")
    if severity not in ("error", "warning"):
        raise ValueError(f"{id}: severity {severity!r} is neither 'error' nor 'warning'")
    if scope not in ("recipe", "shelf", "external"):
        raise ValueError(f"{id}: scope {scope!r} is not recipe, shelf or external")

    def register(check: Callable[..., Any]) -> Callable[..., Any]:
        taken = _REGISTERED.get(id)
        if taken is not None:
            raise ValueError(
                f"rule id {id} is registered twice: by {_name(taken.check)} and {_name(check)}"
            )
        _REGISTERED[id] = Rule(id, severity, title, fix, check, scope)
        return check

    return register


def _name(check: Callable[..., Any]) -> str:
    return f"{check.__module__}.{getattr(check, '__qualname__', repr(check))}"


def collect() -> dict[str, Rule]:
    """Every registered rule by id, in id order."""
    return {rule_id: _REGISTERED[rule_id] for rule_id in sorted(_REGISTERED)}
