"""Rules on recipe.yml itself: it loads, passes the schema, and names itself properly.

The schema is checked once per recipe (`RecipeContext.schema_check`, through the
same function `load_recipe` uses); each problem is reported under the rule of its
top-level field: name → R003, version → R004, migration → R014, anything else → R002.
"""

from __future__ import annotations

from collections.abc import Iterator

from commonshelf.recipes.lint.context import RecipeContext
from commonshelf.recipes.lint.registry import Hit, rule

SCHEMA_RULES = {"name": "R003", "version": "R004", "migration": "R014"}


def _schema_hits(recipe: RecipeContext, rule_id: str) -> Iterator[Hit]:
    """The schema problems filed under `rule_id`, each at its field's line."""
    check = recipe.schema_check
    if check is None:
        return
    doc = recipe.manifest_doc
    for problem in check.problems:
        field = SCHEMA_RULES.get(str(problem.path[0]), "R002") if problem.path else "R002"
        if field == rule_id:
            yield Hit(doc.path, problem.message, doc.line(*problem.path) or 1)


@rule(
    "R001",
    "error",
    "recipe.yml exists and is valid YAML",
    fix="create recipe.yml (`invoke new APP` writes one) or fix the YAML syntax at the line.",
)
def manifest_loads(recipe: RecipeContext) -> Iterator[Hit]:
    if recipe.manifest_doc.error is not None:
        yield recipe.manifest_doc.error


@rule(
    "R002",
    "error",
    "recipe.yml matches the schema",
    fix="fix the field named in the message; see shared/schemas/recipe.schema.json.",
)
def manifest_schema(recipe: RecipeContext) -> Iterator[Hit]:
    doc = recipe.manifest_doc
    if doc.error is None and not isinstance(doc.data, dict):
        yield Hit(doc.path, "recipe.yml must be a mapping of fields", 1)
    check = recipe.schema_check
    if check is not None and check.unreadable is not None:
        yield Hit(doc.path, f"the recipe schema cannot be read: {check.unreadable}")
    yield from _schema_hits(recipe, "R002")


@rule(
    "R003",
    "error",
    "name is lowercase-with-dashes and equals the folder name",
    fix="rename the folder or set `name:` to the folder name.",
)
def manifest_name(recipe: RecipeContext) -> Iterator[Hit]:
    yield from _schema_hits(recipe, "R003")
    manifest = recipe.manifest
    if manifest is not None and manifest["name"] != recipe.folder.name:
        yield Hit(
            recipe.manifest_doc.path,
            f"name '{manifest['name']}' differs from the folder '{recipe.folder.name}'",
            recipe.manifest_doc.line("name"),
        )


@rule(
    "R004",
    "error",
    "version is <recipe semver>+<upstream version>",
    fix="write the version like 1.2.0+3.2.3 (`invoke bump APP --part patch`).",
)
def manifest_version(recipe: RecipeContext) -> Iterator[Hit]:
    yield from _schema_hits(recipe, "R004")


@rule(
    "R014",
    "error",
    "a manual migration says what the human must do",
    fix="add `migration.note` explaining the manual step.",
)
def manual_migration_note(recipe: RecipeContext) -> Iterator[Hit]:
    yield from _schema_hits(recipe, "R014")


@rule(
    "R032",
    "warning",
    "resource hints are given",
    fix="add `resources: {memory_mb: N, disk_mb: N}` so users know what the app needs.",
)
def resource_hints(recipe: RecipeContext) -> Iterator[Hit]:
    if recipe.manifest is not None and "resources" not in recipe.manifest:
        yield Hit(recipe.manifest_doc.path, "no `resources:` hints")
