"""The standard matrix on real containers: custom-html reaches the top level, and each kind of
broken recipe fails exactly the check it targets, with the later checks skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import docker
import yaml

from commonshelf import images
from commonshelf.harness import LABEL_RUN
from commonshelf.matrix import CHECKS, Released, run_matrix
from commonshelf.recipe import Recipe, load_recipe
from commonshelf.settings import Settings


def _copy(settings: Settings, tmp_path: Path) -> Path:
    shutil.copytree(
        settings.recipes_dir, tmp_path / "recipes", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(settings.shared_dir, tmp_path / "shared")
    return tmp_path / "recipes" / "custom-html"


def _statuses(
    recipe: Recipe, image: str, client: docker.DockerClient, released: Released | None = None
) -> dict[str, str]:
    result = run_matrix(recipe, {"app": image}, client, released)
    assert not client.containers.list(all=True, filters={"label": LABEL_RUN})
    assert not client.volumes.list(filters={"label": LABEL_RUN})
    return {c.check: c.status for c in result.checks}


def test_custom_html_passes_every_check(
    settings: Settings, recipe_image: str, docker_client: docker.DockerClient
) -> None:
    recipe = load_recipe(settings.recipes_dir / "custom-html")
    result = run_matrix(recipe, {"app": recipe_image}, docker_client)
    assert [c.check for c in result.checks] == list(CHECKS)
    assert result.passed and result.level == len(CHECKS), result.to_dict()
    assert all(c.seconds >= 0 for c in result.checks)


def test_a_healthcheck_that_never_passes_fails_install_and_shows_logs(
    settings: Settings,
    recipe_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    folder = _copy(settings, tmp_path)
    compose = yaml.safe_load((folder / "compose.yml").read_text())
    compose["services"]["app"]["healthcheck"]["test"] = ["CMD", "http-health", "8080", "/nope"]
    (folder / "compose.yml").write_text(yaml.safe_dump(compose))
    manifest = yaml.safe_load((folder / "recipe.yml").read_text())
    manifest["main"]["timeout"] = 15
    (folder / "recipe.yml").write_text(yaml.safe_dump(manifest))
    result = run_matrix(load_recipe(folder), {"app": recipe_image}, docker_client)
    install = result.checks[0]
    assert install.status == "failed" and "GET /nope" in install.detail  # nginx's log line
    assert [c.status for c in result.checks[1:]] == ["skipped"] * (len(CHECKS) - 1)
    assert result.level == 0


def test_data_kept_outside_the_declared_volume_fails_backup_restore(
    settings: Settings,
    recipe_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    folder = _copy(settings, tmp_path)
    # the app keeps its data in the container's own filesystem, not in the declared volume
    (folder / "tests" / "hooks.py").write_text(
        "def seed(app):\n"
        "    app.exec('mkdir -p /tmp/seeded && echo kept > /tmp/seeded/data')\n\n\n"
        "def verify(app):\n"
        "    assert app.exec('cat /tmp/seeded/data') == 'kept\\n'\n"
    )
    statuses = _statuses(load_recipe(folder), recipe_image, docker_client)
    assert statuses == {
        "install": "passed",
        "smoke": "passed",
        "persistence": "passed",
        "upgrade": "n/a",
        "backup_restore": "failed",
        "removal": "skipped",
    }


def test_a_recipe_without_seed_hooks_stops_at_persistence(
    settings: Settings,
    recipe_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    folder = _copy(settings, tmp_path)
    (folder / "tests" / "hooks.py").unlink()
    statuses = _statuses(load_recipe(folder), recipe_image, docker_client)
    assert statuses["persistence"] == "skipped"
    assert statuses["backup_restore"] == statuses["removal"] == "skipped"


def _released(settings: Settings, client: docker.DockerClient, image: str) -> Released:
    """custom-html as if 0.9.0 had been released: pushed, and pinned by digest."""
    digest = images.push(
        client, image, settings.registry, "commonshelf/custom-html-app", "matrix-test"
    )
    compose = yaml.safe_load((settings.recipes_dir / "custom-html" / "compose.yml").read_text())
    compose["services"]["app"]["image"] = (
        f"{settings.registry}/commonshelf/custom-html-app@{digest}"
    )
    return Released("0.9.0+1.22.1", yaml.safe_dump(compose))


def test_upgrade_from_the_released_version_keeps_seeded_data(
    settings: Settings,
    recipe_image: str,
    docker_client: docker.DockerClient,
) -> None:
    recipe = load_recipe(settings.recipes_dir / "custom-html")
    released = _released(settings, docker_client, recipe_image)
    result = run_matrix(recipe, {"app": recipe_image}, docker_client, released)
    upgrade = next(c for c in result.checks if c.check == "upgrade")
    assert upgrade.status == "passed", upgrade
    assert "0.9.0+1.22.1 → 1.0.0+1.22.1" in upgrade.detail
    assert result.level == len(CHECKS)


def test_a_new_version_that_drops_the_data_volume_fails_upgrade(
    settings: Settings,
    recipe_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    released = _released(settings, docker_client, recipe_image)
    folder = _copy(settings, tmp_path)
    for name in ("compose.yml", "recipe.yml"):
        path = folder / name
        path.write_text(
            path.read_text().replace("content:", "site:").replace("volume: content", "volume: site")
        )
    statuses = _statuses(load_recipe(folder), recipe_image, docker_client, released)
    assert statuses["upgrade"] == "failed"
    assert statuses["persistence"] == "passed"
    assert statuses["backup_restore"] == statuses["removal"] == "skipped"
