"""Rules that compare a recipe with the rest of the shelf: released versions, shared ports.

The released versions come from catalog.json, read here through the bounded JSON
loader for just what the rules need (recipes sit below the catalogue package).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import semver

from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.loaders import CATALOGUE, load_json
from commonshelf.recipes.lint.context import RecipeContext, ShelfContext, as_dict, as_list
from commonshelf.recipes.lint.registry import Hit, rule
from commonshelf.recipes.model import platform_folders, recipe_content_hash

# catalogue schemas that keep a release's hash at apps.<app>.versions.<version>.content_hash
RELEASED_SCHEMAS = (1, 2)


class Released:
    """The released versions of each app, as catalog.json lists them."""

    def __init__(self, apps: dict[str, dict[str, object]]) -> None:
        self.apps = apps

    def versions(self, app: str) -> dict[str, object]:
        return dict(self.apps.get(app, {}))


def load_released(path: Path) -> Released | None:
    """catalog.json's released versions; None when it is missing, unreadable or of a
    schema not in RELEASED_SCHEMAS (the version rules then judge nothing)."""
    try:
        raw = load_json(path, CATALOGUE)
    except CommonshelfError:
        return None
    if not isinstance(raw, dict) or raw.get("schema") not in RELEASED_SCHEMAS:
        return None
    return Released(
        {
            str(app): {
                version: entry
                for version, entry in as_dict(as_dict(item).get("versions")).items()
                if semver.Version.is_valid(version)
            }
            for app, item in as_dict(raw.get("apps")).items()
        }
    )


def _released_hash(entry: object) -> str | None:
    """The content hash a catalogue version entry records (a mapping or a model)."""
    value = (
        entry.get("content_hash")
        if isinstance(entry, dict)
        else getattr(entry, "content_hash", None)
    )
    return value if isinstance(value, str) else None


@rule(
    "R005",
    "error",
    "a changed recipe has a higher version than the released one",
    fix="bump the version: `invoke bump APP --part patch` (or minor/major).",
)
def version_bumped(recipe: RecipeContext) -> Iterator[Hit]:
    manifest = recipe.manifest
    if manifest is None or recipe.catalog is None:
        return
    released = recipe.catalog.versions(recipe.name)
    if not released:
        return
    version, doc = manifest["version"], recipe.manifest_doc
    if version in released:
        now = recipe_content_hash(recipe.folder, platform_folders(recipe.folder, manifest))
        if _released_hash(released[version]) != now:
            yield Hit(
                doc.path,
                f"the recipe changed since {version} was released, but its version did not",
                doc.line("version"),
            )
        return
    latest = max(released, key=semver.Version.parse)
    if semver.Version.parse(version).compare(latest) < 0:
        yield Hit(doc.path, f"{version} is older than the released {latest}", doc.line("version"))


@rule(
    "R006",
    "error",
    "a new upstream version comes with at least a minor bump",
    fix="use `invoke bump APP --part minor --upstream X`.",
)
def upstream_minor_bump(recipe: RecipeContext) -> Iterator[Hit]:
    manifest = recipe.manifest
    if manifest is None or recipe.catalog is None:
        return
    released = recipe.catalog.versions(recipe.name)
    if not released or manifest["version"] in released:
        return
    version = semver.Version.parse(manifest["version"])
    latest = max(released, key=semver.Version.parse)
    old = semver.Version.parse(latest)
    if version.compare(latest) < 0:
        return  # R005
    if version.build != old.build and (version.major, version.minor) == (old.major, old.minor):
        yield Hit(
            recipe.manifest_doc.path,
            f"upstream moved from {old.build} to {version.build} "
            f"with only a patch bump from {latest}",
            recipe.manifest_doc.line("version"),
        )


@rule(
    "R026",
    "error",
    "declared host ports are unique across the shelf",
    fix="pick a port no other recipe declares.",
    scope="shelf",
)
def ports_unique(shelf: ShelfContext) -> Iterator[tuple[RecipeContext, Hit]]:
    owners: dict[tuple[int, str], list[RecipeContext]] = {}
    for recipe in shelf.every_recipe():  # recipes not being linted still hold their ports
        for port in as_list((recipe.manifest or {}).get("ports")):
            owners.setdefault((port["port"], port["protocol"]), []).append(recipe)
    linted = set(map(id, shelf.linted))
    for (port, protocol), holders in owners.items():
        if len(holders) < 2:
            continue
        for holder in holders:
            if id(holder) in linted:
                others = ", ".join(o.name for o in holders if o is not holder)
                yield (
                    holder,
                    Hit(
                        holder.folder / "recipe.yml",
                        f"host port {port}/{protocol} is also declared by {others}",
                        holder.manifest_doc.line("ports"),
                    ),
                )
