"""The standard matrix on real containers: custom-html reaches the top level, and each kind of
broken recipe fails exactly the check it targets, with the later checks skipped."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
import yaml

from commonshelf.ci import images
from commonshelf.ci.matrix import CHECKS, MAX_LEVEL, Released, run_matrix
from commonshelf.ci.reaper import LABEL_RUN
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import Recipe, load_recipe

from .conftest import copy_of_recipe, edit_yaml, never_healthy

# The fixture that leaves a container behind: a service that, like apps which manage
# their own helper containers, starts one through the engine's socket and never
# removes it. perl-base (in every Debian image) speaks HTTP over the socket.
SPAWN_A_WORKER = r"""
use IO::Socket::UNIX;
sub api {
  my ($method, $path, $body) = @_; $body //= "";
  my $s = IO::Socket::UNIX->new(Peer => "/var/run/docker.sock") or die "socket: $!";
  print $s "$method $path HTTP/1.0\r\nHost: engine\r\nContent-Type: application/json\r\n"
         . "Content-Length: " . length($body) . "\r\n\r\n$body";
  local $/; return scalar <$s>;
}
my ($image) = api("GET", "/containers/$ENV{HOSTNAME}/json") =~ /"Image":"(sha256:[0-9a-f]+)"/;
my ($id) = api("POST", "/containers/create",
               qq({"Image":"$image","Cmd":["sleep","300"]})) =~ /"Id":"([0-9a-f]+)"/;
api("POST", "/containers/$id/start");
print "started worker $id\n";
sleep 300;
"""


def _statuses(
    recipe: Recipe, image: str, client: docker.DockerClient, released: Released | None = None
) -> dict[str, str]:
    result = run_matrix(recipe, {"app": image}, client, released)
    assert not client.containers.list(all=True, sparse=True, filters={"label": LABEL_RUN})
    assert not client.volumes.list(filters={"label": LABEL_RUN})
    return {c.check: c.status for c in result.checks}


def test_custom_html_passes_every_check(
    settings: Settings, recipe_image: str, docker_client: docker.DockerClient
) -> None:
    recipe = load_recipe(settings.recipes_dir / "custom-html")
    result = run_matrix(recipe, {"app": recipe_image}, docker_client)
    assert [c.check for c in result.checks] == list(CHECKS)
    assert result.lint is not None and result.lint.status == "passed", result.lint
    assert result.passed and result.level == MAX_LEVEL, result.to_dict()
    assert all(c.seconds >= 0 for c in result.checks)


def test_a_healthcheck_that_never_passes_fails_install_and_shows_logs(
    settings: Settings,
    recipe_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    folder = never_healthy(settings, tmp_path, timeout=15)
    result = run_matrix(load_recipe(folder), {"app": recipe_image}, docker_client)
    install = result.checks[0]
    assert install.status == "failed" and "GET /nope" in install.detail  # nginx's log line
    assert [c.status for c in result.checks[1:]] == ["skipped"] * (len(CHECKS) - 1)
    assert result.level == 0


@pytest.mark.parametrize(
    ("dump", "expected"),
    [
        ("true", "failed"),
        ("mkdir -p /srv/www/.dump && cp /tmp/live/data /srv/www/.dump/", "passed"),
    ],
    ids=["backup-hook-writes-nothing", "backup-hook-writes-a-dump"],
)
def test_a_backup_hook_that_writes_nothing_fails_backup_restore(
    settings: Settings,
    recipe_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    dump: str,
    expected: str,
) -> None:
    folder = copy_of_recipe(settings, tmp_path)
    # the app keeps its live data outside the volume (like a database server's memory):
    # only the backup hook's dump puts it where a backup can find it
    (folder / "tests" / "hooks.py").write_text(
        "def seed(app):\n"
        "    app.exec('mkdir -p /tmp/live && echo kept > /tmp/live/data')\n\n\n"
        "def verify(app):\n"
        "    assert app.exec('cat /tmp/live/data') == 'kept\\n'\n"
    )
    backup = {
        "service": "app",
        "pre": [dump],
        "post": ["true"],
        "restore": ["mkdir -p /tmp/live && cp /srv/www/.dump/data /tmp/live/data"],
    }
    edit_yaml(folder / "recipe.yml", lambda m: m.update(backup=backup))
    statuses = _statuses(load_recipe(folder), recipe_image, docker_client)
    assert statuses == {
        "install": "passed",
        "smoke": "passed",
        "persistence": "passed",
        "upgrade": "n/a",
        "backup_restore": expected,
        "removal": "passed" if expected == "passed" else "skipped",
    }


def test_a_container_left_behind_fails_removal(
    settings: Settings,
    recipe_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    folder = copy_of_recipe(settings, tmp_path)
    spawner = {
        "image": recipe_image,
        "user": "0",
        "volumes": ["/var/run/docker.sock:/var/run/docker.sock"],
        "command": ["perl", "-e", SPAWN_A_WORKER],
    }
    edit_yaml(folder / "compose.yml", lambda c: c["services"].update(spawner=spawner))
    before = {c.id for c in docker_client.containers.list(all=True, sparse=True)}
    result = run_matrix(load_recipe(folder), {"app": recipe_image}, docker_client)
    statuses = {c.check: c.status for c in result.checks}
    assert statuses == {
        "install": "passed",
        "smoke": "passed",
        "persistence": "passed",
        "upgrade": "n/a",
        "backup_restore": "passed",
        "removal": "failed",
    }
    removal = result.checks[-1]
    assert "left behind after removal: container" in removal.detail
    assert "sleep" in removal.detail
    assert result.level == len(CHECKS) - 1
    # the linter forbids the socket too; the matrix catches what it does regardless
    assert result.lint is not None and result.lint.status == "failed"
    assert "docker.sock" in result.lint.detail or "socket" in result.lint.detail.lower()
    # the matrix removed what the app left behind
    assert {c.id for c in docker_client.containers.list(all=True, sparse=True)} <= before


def test_a_recipe_without_seed_hooks_stops_at_persistence(
    settings: Settings,
    recipe_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    folder = copy_of_recipe(settings, tmp_path)
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
    assert f"0.9.0+1.22.1 → {recipe.version}" in upgrade.detail
    assert result.level == MAX_LEVEL


def test_a_new_version_that_drops_the_data_volume_fails_upgrade(
    settings: Settings,
    recipe_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    released = _released(settings, docker_client, recipe_image)
    folder = copy_of_recipe(settings, tmp_path)
    for name in ("compose.yml", "recipe.yml"):
        path = folder / name
        path.write_text(
            path.read_text().replace("content:", "site:").replace("volume: content", "volume: site")
        )
    statuses = _statuses(load_recipe(folder), recipe_image, docker_client, released)
    assert statuses["upgrade"] == "failed"
    assert statuses["persistence"] == "passed"
    assert statuses["backup_restore"] == statuses["removal"] == "skipped"
