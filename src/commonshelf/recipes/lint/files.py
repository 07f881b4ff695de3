"""Rules on the recipe's other files: changelog, README, tests, Dockerfiles and waivers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from commonshelf.recipes.lint.context import RecipeContext, as_dict, as_list
from commonshelf.recipes.lint.registry import Hit, rule
from commonshelf.recipes.model import PLATFORM_SERVICES, changelog_entry, schema_file_for

WAIVER_DAYS = 90  # the longest a waiver may run (R031)
WAIVER_WARN_DAYS = 14  # a waiver this close to its expiry is due for review (R035)
WAIVERS = ".trivyignore.yaml"


@rule(
    "R007",
    "error",
    "CHANGELOG.md has an entry for the current version",
    fix="add a `## <version>` section to CHANGELOG.md saying what changed.",
)
def changelog_has_entry(recipe: RecipeContext) -> Iterator[Hit]:
    manifest = recipe.manifest
    if manifest is not None and changelog_entry(recipe.folder, manifest["version"]) is None:
        yield Hit(recipe.folder / "CHANGELOG.md", f"no `## {manifest['version']}` entry")


@rule(
    "R008",
    "error",
    "README.md exists",
    fix="add README.md: what the app is, its data, how to use it.",
)
def readme_exists(recipe: RecipeContext) -> Iterator[Hit]:
    if not (recipe.folder / "README.md").is_file():
        yield Hit(recipe.folder / "README.md", "README.md is missing")


@rule(
    "R009",
    "error",
    "tests/ holds at least one test_*.py",
    fix="add tests/test_<app>.py using the `app` fixture (see recipes/custom-html).",
)
def tests_exist(recipe: RecipeContext) -> Iterator[Hit]:
    if not list((recipe.folder / "tests").glob("test_*.py")):
        yield Hit(recipe.folder / "tests", "no tests/test_*.py")


def _builds(recipe: RecipeContext) -> Iterator[tuple[str, str, Path]]:
    """(service, build folder, its Dockerfile) for each service the recipe builds."""
    if recipe.manifest is None:
        return
    for service, spec in recipe.manifest["services"].items():
        if "build" in spec:
            yield service, spec["build"], recipe.folder / spec["build"] / "Dockerfile"


@rule(
    "R011",
    "error",
    "every built service has a Dockerfile in its build folder",
    fix="add <build folder>/Dockerfile or correct `services.<name>.build`.",
)
def dockerfile_exists(recipe: RecipeContext) -> Iterator[Hit]:
    for service, build, dockerfile in _builds(recipe):
        if not dockerfile.is_file():
            yield Hit(
                recipe.manifest_doc.path,
                f"service '{service}' builds from '{build}/', which has no Dockerfile",
                recipe.manifest_doc.line("services", service, "build"),
            )


@rule(
    "R033",
    "error",
    "a platform service is one the shelf has (shared/services/<name>/)",
    fix="use `platform: postgres` or `platform: mariadb`, or build the service (`build:`).",
)
def platform_service_exists(recipe: RecipeContext) -> Iterator[Hit]:
    if recipe.manifest is None:
        return
    services = schema_file_for(recipe.folder).parent.parent / PLATFORM_SERVICES  # as load_recipe
    for service, spec in recipe.manifest["services"].items():
        name = spec.get("platform")
        if name is not None and not (services / str(name) / "Dockerfile").is_file():
            yield Hit(
                recipe.manifest_doc.path,
                f"service '{service}' names platform service '{name}', which the shelf lacks",
                recipe.manifest_doc.line("services", service, "platform"),
            )


@rule(
    "R012",
    "error",
    "Dockerfiles build only on the project's base image",
    fix="start with `ARG BASE_IMAGE` then `FROM ${BASE_IMAGE}`; never FROM a registry image.",
)
def builds_on_base_image(recipe: RecipeContext) -> Iterator[Hit]:
    for _, _, dockerfile in _builds(recipe):
        if dockerfile.is_file():
            yield from _dockerfile_hits(dockerfile)


def _dockerfile_hits(dockerfile: Path) -> Iterator[Hit]:
    try:
        lines = dockerfile.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        yield Hit(dockerfile, f"cannot be read: {exc}")
        return
    stages: set[str] = set()
    has_arg = False
    for number, raw in enumerate(lines, 1):
        words = raw.split()
        if not words:
            continue
        keyword = words[0].upper()
        if keyword == "ARG" and len(words) > 1 and words[1].split("=")[0] == "BASE_IMAGE":
            has_arg = True
        if keyword != "FROM" or len(words) < 2:
            continue
        image = next((w for w in words[1:] if not w.startswith("--")), "")
        if len(words) >= 4 and words[-2].upper() == "AS":
            stages.add(words[-1].lower())
        if image in ("${BASE_IMAGE}", "$BASE_IMAGE") and has_arg:
            continue
        if image.lower() in stages:
            continue
        yield Hit(dockerfile, f"`{raw.strip()}` does not build on ${{BASE_IMAGE}}", number)


def _waivers(recipe: RecipeContext) -> Iterator[tuple[str, int | None, dict[str, Any]]]:
    """(label, line, entry) for each waiver in .trivyignore.yaml (none when it is absent)."""
    if not (recipe.folder / WAIVERS).exists():
        return
    doc = recipe.yaml(WAIVERS)
    for kind, entries in as_dict(doc.data).items():
        for index, item in enumerate(as_list(entries)):
            entry = as_dict(item)
            yield f"waiver {entry.get('id', index)!s}", doc.line(kind, index), entry


@rule(
    "R030",
    "error",
    "each .trivyignore.yaml waiver carries a statement",
    fix="add `statement:` saying why the finding does not apply.",
)
def waiver_statement(recipe: RecipeContext) -> Iterator[Hit]:
    path = recipe.folder / WAIVERS
    error = recipe.yaml(WAIVERS).error if path.exists() else None
    if error is not None:
        yield error
    for label, line, entry in _waivers(recipe):
        if not str(entry.get("statement", "")).strip():
            yield Hit(path, f"{label} has no statement", line)


def expiry_date(value: Any) -> dt.date | None:
    """A waiver's `expired_at` as a date (YAML gives a date, a datetime or a string), or
    None when it is missing or no date: such a waiver waives nothing (R031, the scan gate)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return value if isinstance(value, dt.date) else None


@rule(
    "R031",
    "error",
    "each waiver expires within 90 days",
    fix="set `expired_at: YYYY-MM-DD`, at most 90 days ahead, and re-review it then.",
)
def waiver_expiry(recipe: RecipeContext) -> Iterator[Hit]:
    path = recipe.folder / WAIVERS
    today = recipe.today
    for label, line, entry in _waivers(recipe):
        expires = expiry_date(entry.get("expired_at"))
        if expires is None:
            yield Hit(path, f"{label} has no valid expired_at date", line)
        elif expires < today:
            yield Hit(path, f"{label} expired on {expires}", line)
        elif (expires - today).days > WAIVER_DAYS:
            yield Hit(path, f"{label} runs to {expires}, more than {WAIVER_DAYS} days ahead", line)


@rule(
    "R035",
    "warning",
    f"a waiver expires within {WAIVER_WARN_DAYS} days",
    fix="re-review the finding: if the statement still holds, move `expired_at` (at most "
    f"{WAIVER_DAYS} days ahead); if not, fix the finding and remove the waiver.",
)
def waiver_expires_soon(recipe: RecipeContext) -> Iterator[Hit]:
    path = recipe.folder / WAIVERS
    for label, line, entry in _waivers(recipe):
        if not str(entry.get("statement", "")).strip():
            continue  # R030's: a waiver without a statement waives nothing, soon or late
        expires = expiry_date(entry.get("expired_at"))
        if expires is None or expires < recipe.today:
            continue  # R031's
        days = (expires - recipe.today).days
        if days <= WAIVER_WARN_DAYS:
            when = "today" if days == 0 else f"in {days} day{'s' if days > 1 else ''}"
            yield Hit(path, f"{label} expires {when} ({expires})", line)
