"""Recipe loading: valid recipes load; broken ones fail with the file, the field and a fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from commonshelf.catalogue.contract import is_pinned
from commonshelf.platform.errors import RecipeError
from commonshelf.recipes.model import content_hash, discover, load_recipe

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shelf(tmp_path: Path) -> Path:
    shutil.copytree(
        REPO / "recipes", tmp_path / "recipes", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(REPO / "shared", tmp_path / "shared")
    return tmp_path


def _edit(recipe_dir: Path, **changes: object) -> None:
    path = recipe_dir / "recipe.yml"
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data))


def test_bundled_recipes_load() -> None:
    recipes = [load_recipe(p) for p in discover(REPO / "recipes")]
    assert "custom-html" in [r.name for r in recipes]
    html = next(r for r in recipes if r.name == "custom-html")
    assert html.upstream_version == "1.22.1"
    assert html.image_tag == html.version.replace("+", "_")
    assert html.main.service == "app" and html.builds == {"app": "image"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"version": "1.0"}, r"field 'version'"),
        ({"name": "Custom_HTML"}, r"field 'name'"),
        ({"category": "toys"}, r"field 'category'"),
        ({"main": {"service": "app", "port": 0, "health": "/"}}, r"field 'main.port'"),
        ({"unknown": 1}, r"Additional properties"),
        ({"name": "other-name"}, r"differs from its folder"),
        ({"main": {"service": "web", "port": 80, "health": "/"}}, r"service 'web' is not in"),
        ({"services": {"app": {"build": "nowhere"}}}, r"has no Dockerfile"),
    ],
)
def test_broken_manifest_names_file_and_field(
    shelf: Path, changes: dict[str, object], expected: str
) -> None:
    recipe_dir = shelf / "recipes" / "custom-html"
    _edit(recipe_dir, **changes)
    with pytest.raises(RecipeError, match=expected) as caught:
        load_recipe(recipe_dir)
    assert "recipe.yml" in caught.value.what
    assert caught.value.fix


def test_invalid_yaml_reports_the_line(shelf: Path) -> None:
    path = shelf / "recipes" / "custom-html" / "recipe.yml"
    path.write_text("schema: 1\nname: [unclosed\n")
    with pytest.raises(RecipeError, match=r"recipe\.yml:\d+: invalid YAML"):
        load_recipe(path.parent)


def test_missing_compose_is_named(shelf: Path) -> None:
    (shelf / "recipes" / "custom-html" / "compose.yml").unlink()
    with pytest.raises(RecipeError, match=r"compose\.yml is missing"):
        load_recipe(shelf / "recipes" / "custom-html")


def test_content_hash_tracks_bytes_names_and_exec_bit(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one")
    first = content_hash(tmp_path)
    assert content_hash(tmp_path) == first
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert content_hash(tmp_path) == first
    (tmp_path / "a.txt").chmod(0o755)
    assert content_hash(tmp_path) != first
    (tmp_path / "a.txt").chmod(0o644)
    (tmp_path / "a.txt").write_text("two")
    assert content_hash(tmp_path) != first


def test_the_runtime_contract_comes_from_the_manifest() -> None:
    from commonshelf.catalogue.contract import DataVolume, MainService, ServiceImage
    from commonshelf.ci.contract_for import compose_target, runtime_for

    recipe = load_recipe(REPO / "recipes" / "custom-html")
    digest = "sha256:" + "c" * 64
    pinned = {"app": ServiceImage(image=f"reg/custom-html-app@{digest}", digest=digest)}
    runtime = runtime_for(recipe, pinned)
    assert runtime.compose == compose_target("custom-html", recipe.version)
    assert runtime.compose == f"apps/custom-html/{recipe.version}/compose.yml"
    assert runtime.services == pinned
    assert runtime.main == MainService(service="app", port=8080, health="/healthz", timeout=60)
    assert runtime.data == (
        DataVolume(
            volume="content",
            service="app",
            path="/srv/www",
            description="The website's files, served as they are.",
        ),
    )
    assert runtime.architectures == ("amd64", "arm64")
    assert runtime.resources.memory_mb == 32 and runtime.migration.kind == "none"
    assert runtime.backup is None and runtime.secrets == {} and runtime.settings == {}
    assert all(is_pinned(s.image) for s in runtime.services.values())


def test_settings_and_secrets_of_the_manifest_are_typed(shelf: Path) -> None:
    from commonshelf.ci.contract_for import runtime_for

    recipe_dir = shelf / "recipes" / "custom-html"
    _edit(
        recipe_dir,
        env={
            "SITE_NAME": {"default": "My site", "description": "the site's name"},
            "WORKERS": {"default": 2, "description": "worker processes"},
            "GZIP": {"default": True, "description": "compress answers"},
        },
        secrets={"admin_token": {"description": "admin API", "length": 48}},
        backup={"service": "app", "pre": ["sync"]},
    )
    runtime = runtime_for(load_recipe(recipe_dir), {})
    assert {k: type(s.default) for k, s in runtime.settings.items()} == {
        "SITE_NAME": str,
        "WORKERS": int,
        "GZIP": bool,
    }
    assert runtime.settings["WORKERS"].parse("WORKERS", "4") == 4
    assert runtime.secrets["admin_token"].length == 48
    assert runtime.backup is not None and runtime.backup.pre == ("sync",)


def test_invalid_compose_yaml_is_a_recipe_error_with_the_line(shelf: Path) -> None:
    path = shelf / "recipes" / "custom-html" / "compose.yml"
    path.write_text("services:\n  app: [unclosed\n")
    with pytest.raises(RecipeError, match=r"compose\.yml:\d+: invalid YAML"):
        load_recipe(path.parent)


def test_a_service_may_name_a_shared_platform_service(shelf: Path) -> None:
    recipe_dir = shelf / "recipes" / "custom-html"
    compose = yaml.safe_load((recipe_dir / "compose.yml").read_text())
    compose["services"]["db"] = {"image": "commonshelf/postgres"}
    (recipe_dir / "compose.yml").write_text(yaml.safe_dump(compose))
    _edit(recipe_dir, services={"app": {"build": "image"}, "db": {"platform": "postgres"}})
    recipe = load_recipe(recipe_dir)
    assert recipe.builds == {"app": "image"}
    assert recipe.platform == {"db": shelf / "shared" / "services" / "postgres"}
    before = recipe.content_hash()
    (shelf / "shared" / "services" / "postgres" / "bin" / "db-dump").write_text("#!/bin/sh\n")
    assert load_recipe(recipe_dir).content_hash() != before  # its database is part of it

    _edit(recipe_dir, services={"app": {"build": "image"}, "db": {"platform": "oracle"}})
    with pytest.raises(RecipeError, match=r"names platform service 'oracle'.*mariadb, postgres"):
        load_recipe(recipe_dir)
    _edit(recipe_dir, services={"app": {"build": "image", "platform": "postgres"}})
    with pytest.raises(RecipeError, match=r"services"):
        load_recipe(recipe_dir)
