"""The packager's workflow: scaffold a recipe from `shared/template/`, and bump its version.

A scaffolded recipe passes lint, builds and passes its own tests unchanged, so
a packager starts from something that works and changes one thing at a time.
Both commands write to temporary files and rename, so an interrupted command
never leaves half a recipe.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import semver

from commonshelf.platform.errors import RecipeError
from commonshelf.platform.fsutil import write_text_atomic
from commonshelf.recipes.model import load_recipe

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PARTS = ("major", "minor", "patch")
UPSTREAM = re.compile(r"^[0-9A-Za-z.-]+$")


def _title(name: str) -> str:
    return " ".join(word.capitalize() for word in name.split("-"))


def new_recipe(shelf_root: Path, name: str, title: str | None = None) -> Path:
    """Create `recipes/<name>/` from the template; refuse to touch an existing folder."""
    if not NAME.match(name) or len(name) > 40:
        raise RecipeError(
            f"'{name}' is not a recipe name.",
            "use lowercase letters, digits and single dashes, e.g. my-app.",
        )
    target = shelf_root / "recipes" / name
    if target.exists():
        raise RecipeError(f"{target} already exists.", "pick another name, or edit that recipe.")
    template = shelf_root / "shared" / "template"
    if not template.is_dir():
        raise RecipeError(f"{template} is missing.", "restore shared/template/ from git.")
    values = {
        "{{name}}": name,
        "{{title}}": title or _title(name),
        "{{module}}": name.replace("-", "_"),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}.") as work:
        staging = Path(work) / name
        for source in sorted(template.rglob("*")):
            relative = str(source.relative_to(template))
            for key, value in values.items():
                relative = relative.replace(key, value)
            destination = staging / relative
            if source.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            text = source.read_text(encoding="utf-8")
            for key, value in values.items():
                text = text.replace(key, value)
            destination.write_text(text, encoding="utf-8")
            shutil.copymode(source, destination)
        staging.rename(target)
    return target


def bumped(version: str, part: str, upstream: str | None = None) -> str:
    """The next `<recipe semver>+<upstream>`; a new upstream needs at least a minor bump."""
    if part not in PARTS:
        raise RecipeError(f"'{part}' is not a version part.", "use major, minor or patch.")
    current = semver.Version.parse(version)
    new_upstream = upstream or str(current.build)
    if not UPSTREAM.match(new_upstream):
        raise RecipeError(
            f"'{new_upstream}' is not an upstream version.",
            "use letters, digits, dots and dashes, e.g. 3.2.1.",
        )
    if new_upstream != current.build and part == "patch":
        raise RecipeError(
            f"A new upstream version ({current.build} → {new_upstream}) needs at "
            "least a minor bump (rule R006).",
            "use --part minor or major.",
        )
    step = {"major": current.bump_major, "minor": current.bump_minor, "patch": current.bump_patch}[
        part
    ]()
    return str(step.replace(build=new_upstream))


def bump_recipe(recipe_dir: Path, part: str, upstream: str | None = None) -> tuple[str, str]:
    """Bump recipe.yml's version and open a CHANGELOG entry; returns (old, new)."""
    recipe = load_recipe(recipe_dir)
    new = bumped(recipe.version, part, upstream)
    manifest = recipe_dir / "recipe.yml"
    text = manifest.read_text(encoding="utf-8")
    updated, count = re.subn(r"(?m)^version:\s*\S+\s*$", f"version: {new}", text)
    if count != 1:
        raise RecipeError(
            f"{manifest}: no single top-level `version:` line to bump.",
            "write the version on one line: `version: 1.2.0+3.2.3`.",
        )
    changelog = recipe_dir / "CHANGELOG.md"
    log = (
        changelog.read_text(encoding="utf-8")
        if changelog.exists()
        else (f"# Changelog: {recipe.title}\n")
    )
    entry = f"## {new}\n\n- Describe what changed for people who run {recipe.title}.\n\n"
    first = re.search(r"(?m)^## ", log)
    log = (
        log[: first.start()] + entry + log[first.start() :]
        if first
        else (log.rstrip("\n") + "\n\n" + entry)
    )
    write_text_atomic(changelog, log.rstrip("\n") + "\n")
    write_text_atomic(manifest, updated)
    return recipe.version, new
