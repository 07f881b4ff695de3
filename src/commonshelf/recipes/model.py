"""A recipe: one versioned folder per app, loaded and validated before anything builds it.

`recipe.yml` is the machine-readable manifest (schema in
`shared/schemas/recipe.schema.json`), `compose.yml` the Swarm stack. The
content hash of the folder keys builds, evidence and releases, so an unchanged
recipe is never rebuilt, retested or re-released.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import semver

from commonshelf.platform.errors import RecipeError
from commonshelf.platform.loaders import RECIPE, load_yaml
from commonshelf.recipes.compose import load_compose
from commonshelf.recipes.manifest_schema import schema_file_for as schema_file_for
from commonshelf.recipes.manifest_schema import validate_manifest as validate_manifest

IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})


@dataclass(frozen=True)
class Main:
    service: str
    port: int
    health: str
    timeout: int = 120


@dataclass(frozen=True)
class DataVolume:
    volume: str
    service: str
    path: str


@dataclass(frozen=True)
class Recipe:
    """A validated recipe folder."""

    path: Path
    name: str
    title: str
    description: str
    category: str
    version: str
    main: Main
    builds: dict[str, str]  # service -> build context folder, relative to the recipe
    data: tuple[DataVolume, ...]
    manifest: dict[str, Any] = field(repr=False)
    # service -> shared platform service folder (`shared/services/<name>/`, e.g. postgres):
    # one definition, one image for every recipe and version that names it
    platform: dict[str, Path] = field(default_factory=dict)

    @property
    def recipe_version(self) -> semver.Version:
        return semver.Version.parse(self.version)

    @property
    def upstream_version(self) -> str:
        return self.version.split("+", 1)[1]

    @property
    def image_tag(self) -> str:
        """The version as a Docker tag ('+' is not allowed in tags)."""
        return self.version.replace("+", "_")

    @property
    def compose_path(self) -> Path:
        return self.path / "compose.yml"

    @property
    def tests_dir(self) -> Path:
        return self.path / "tests"

    def compose(self) -> dict[str, Any]:
        return load_compose(self.compose_path)

    def content_hash(self) -> str:
        return recipe_content_hash(self.path, self.platform)


def load_recipe(recipe_dir: Path, schema_file: Path | None = None) -> Recipe:
    """Load and validate `recipe_dir/recipe.yml` against the schema and its compose file."""
    recipe_dir = recipe_dir.resolve()
    if not recipe_dir.is_dir():
        raise RecipeError(
            f"{recipe_dir} is not a recipe folder.", "check the app name (`invoke --list`)."
        )
    manifest_path = recipe_dir / "recipe.yml"
    manifest = load_yaml(manifest_path, RECIPE)
    schema_file = schema_file or schema_file_for(recipe_dir)
    validate_manifest(manifest, manifest_path, schema_file)
    if manifest["name"] != recipe_dir.name:
        raise RecipeError(
            f"{manifest_path}: name '{manifest['name']}' differs from its folder "
            f"'{recipe_dir.name}'.",
            "rename the folder or the name so they match.",
        )
    compose = load_compose(recipe_dir / "compose.yml")
    services = compose["services"]
    main = Main(**manifest["main"])
    for service in [main.service, *manifest["services"]]:
        if service not in services:
            raise RecipeError(
                f"{manifest_path}: service '{service}' is not in compose.yml.",
                "name a service that compose.yml defines.",
            )
    builds: dict[str, str] = {
        svc: spec["build"] for svc, spec in manifest["services"].items() if "build" in spec
    }
    platform = {
        svc: _platform_service(schema_file, manifest_path, svc, spec["platform"])
        for svc, spec in manifest["services"].items()
        if "platform" in spec
    }
    for svc, context in builds.items():
        if not (recipe_dir / context / "Dockerfile").is_file():
            raise RecipeError(
                f"{manifest_path}: service '{svc}' builds from '{context}/', "
                "which has no Dockerfile.",
                f"add {context}/Dockerfile or correct services.{svc}.build.",
            )
    return Recipe(
        path=recipe_dir,
        name=manifest["name"],
        title=manifest["title"],
        description=manifest["description"],
        category=manifest["category"],
        version=manifest["version"],
        main=main,
        builds=builds,
        platform=platform,
        data=tuple(
            DataVolume(volume=d["volume"], service=d["service"], path=d["path"])
            for d in manifest["data"]
        ),
        manifest=manifest,
    )


PLATFORM_SERVICES = Path("services")  # under the shelf's shared/ folder


def recipe_content_hash(folder: Path, platform: dict[str, Path]) -> str:
    """What keys a recipe's builds, evidence and releases: its folder's hash, and that of each
    shared platform service it names (changing the shared database re-vets its recipes)."""
    shared = [f"{name}={content_hash(path)}" for name, path in sorted(platform.items())]
    return content_hash(folder, *shared)


def platform_folders(recipe_dir: Path, manifest: dict[str, Any]) -> dict[str, Path]:
    """service -> the shared platform service folder it names (not checked to exist)."""
    shared = schema_file_for(recipe_dir).parent.parent / PLATFORM_SERVICES
    services = manifest.get("services") or {}
    return {
        str(name): shared / str(spec["platform"])
        for name, spec in services.items()
        if isinstance(spec, dict) and isinstance(spec.get("platform"), str)
    }


def _platform_service(schema_file: Path, manifest_path: Path, service: str, name: str) -> Path:
    """The folder of a shared platform service (`shared/services/NAME/Dockerfile`)."""
    shared = schema_file.parent.parent
    folder = shared / PLATFORM_SERVICES / name
    if not (folder / "Dockerfile").is_file():
        known = sorted(d.parent.name for d in (shared / PLATFORM_SERVICES).glob("*/Dockerfile"))
        raise RecipeError(
            f"{manifest_path}: service '{service}' names platform service '{name}', "
            "which the shelf does not have.",
            f"use one of: {', '.join(known) or '(none)'}; or build the service (`build:`).",
        )
    return folder


def changelog_entry(recipe_dir: Path, version: str) -> str | None:
    """The CHANGELOG.md section for `version` (None when there is none)."""
    try:
        text = (recipe_dir / "CHANGELOG.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = re.search(
        rf"^##\s+\[?{re.escape(version)}\]?[^\n]*\n(.*?)(?=^##\s|\Z)",
        text,
        flags=re.MULTILINE | re.DOTALL,
    )
    return match.group(1).strip() if match else None


def discover(recipes_dir: Path) -> list[Path]:
    """Recipe folders of the shelf, sorted by name."""
    if not recipes_dir.is_dir():
        return []
    return sorted(p for p in recipes_dir.iterdir() if p.is_dir() and (p / "recipe.yml").exists())


def _tracked_files(folder: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_PARTS)
        for name in filenames:
            if not name.endswith(".pyc"):
                files.append(Path(dirpath) / name)
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def content_hash(folder: Path, *extra: str) -> str:
    """sha256 over every file's relative path, executable bit and bytes (plus `extra` strings)."""
    digest = hashlib.sha256()
    for item in extra:
        digest.update(item.encode() + b"\0")
    for path in _tracked_files(folder):
        rel = path.relative_to(folder).as_posix()
        executable = b"x" if path.stat().st_mode & 0o111 else b"-"
        digest.update(rel.encode() + b"\0" + executable + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
