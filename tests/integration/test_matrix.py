"""The standard matrix on Swarm, as installations run apps: custom-html reaches the top level,
its upgrade is probed through the proxy without a failed request, and each kind of broken
recipe fails exactly the check it targets, with the later checks skipped. Every rehearsal
installation is gone afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from commonshelf.ci.evidence import CheckResult
from commonshelf.ci.levels import CHECKS, MAX_LEVEL, MatrixResult
from commonshelf.ci.linting import lint_verdicts
from commonshelf.ci.matrix import run_matrix
from commonshelf.ci.rehearsal import Deployable, PinnedProxy, Rehearsal
from commonshelf.ci.stages import Shelf
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import Recipe, load_recipe

from .conftest import (
    APP,
    assert_rehearsals_gone,
    copy_of_recipe,
    edit_yaml,
    never_healthy,
    released_version,
)

# The fixture that leaves a container behind: a service that, like apps which manage
# their own helper containers, starts one through the engine's socket and never
# removes it. perl-base (in every Debian image) speaks HTTP over the socket. A Swarm
# task's hostname is its container's id.
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
WORKER_COMMAND = "sleep 300"


def _matrix(
    ci: Shelf,
    recipe: Recipe,
    images: dict[str, str],
    client: docker.DockerClient,
    proxy: PinnedProxy,
    made: list[Rehearsal],
    released: Deployable | None = None,
    lint: CheckResult | None = None,
) -> MatrixResult:
    """The matrix over the recipe's candidate (pushed and pinned as CI does); afterwards its
    rehearsal installation must be gone."""
    result = run_matrix(recipe, ci.candidate(recipe, images), client, proxy, released, lint)
    assert [c.check for c in result.checks] == list(CHECKS)
    assert_rehearsals_gone(client, made)
    return result


def _statuses(result: MatrixResult) -> dict[str, str]:
    return {c.check: c.status for c in result.checks}


def _why(result: MatrixResult) -> str:
    """Every check's status and detail, for an assertion's message."""
    return "\n".join(f"{c.check}: {c.status}: {c.detail}" for c in result.checks)


def _check(result: MatrixResult, name: str) -> CheckResult:
    return next(c for c in result.checks if c.check == name)


def test_custom_html_passes_every_check(
    settings: Settings,
    ci: Shelf,
    recipe_image: str,
    docker_client: docker.DockerClient,
    pinned_proxy: PinnedProxy,
    rehearsals: list[Rehearsal],
) -> None:
    recipe = load_recipe(settings.recipes_dir / APP)
    lint = lint_verdicts(settings.root, [APP])[APP]
    result = _matrix(
        ci, recipe, {"app": recipe_image}, docker_client, pinned_proxy, rehearsals, lint=lint
    )
    assert result.lint is not None and result.lint.status == "passed", result.lint
    assert result.passed and result.level == MAX_LEVEL, _why(result)
    assert _check(result, "upgrade").status == "n/a" and result.upgrade is None
    assert all(c.seconds >= 0 for c in result.checks)
    assert "behind the proxy" in _check(result, "install").detail
    assert len(rehearsals) == 1


def test_a_healthcheck_that_never_passes_fails_install_and_shows_logs(
    settings: Settings,
    ci: Shelf,
    recipe_image: str,
    docker_client: docker.DockerClient,
    pinned_proxy: PinnedProxy,
    rehearsals: list[Rehearsal],
    tmp_path: Path,
) -> None:
    folder = never_healthy(settings, tmp_path, timeout=15)
    result = _matrix(
        ci, load_recipe(folder), {"app": recipe_image}, docker_client, pinned_proxy, rehearsals
    )
    install = result.checks[0]
    assert install.status == "failed", install
    assert "did not become healthy" in install.detail and "custom-html_app" in install.detail
    # what the packager needs to see why: the app's own log (nginx logs each probe)
    assert "GET /nope" in install.detail, install.detail
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
    ci: Shelf,
    recipe_image: str,
    docker_client: docker.DockerClient,
    pinned_proxy: PinnedProxy,
    rehearsals: list[Rehearsal],
    tmp_path: Path,
    dump: str,
    expected: str,
) -> None:
    folder = copy_of_recipe(settings, tmp_path)
    # The app keeps its live data in a volume the recipe does not declare as data (like a
    # database server's files): it survives restarts, but only the backup hook's dump puts
    # it where a backup finds it.
    (folder / "tests" / "hooks.py").write_text(
        "def seed(app):\n"
        "    app.exec('mkdir -p /tmp/live && echo kept > /tmp/live/data')\n\n\n"
        "def verify(app):\n"
        "    assert app.exec('cat /tmp/live/data') == 'kept\\n'\n"
    )

    def live_volume(compose: dict[str, Any]) -> None:
        compose["services"]["app"]["volumes"].append("live:/tmp")
        compose["volumes"]["live"] = None

    edit_yaml(folder / "compose.yml", live_volume)
    backup = {
        "service": "app",
        "pre": [dump],
        "post": ["true"],
        "restore": ["mkdir -p /tmp/live && cp /srv/www/.dump/data /tmp/live/data"],
    }
    edit_yaml(folder / "recipe.yml", lambda m: m.update(backup=backup))
    result = _matrix(
        ci, load_recipe(folder), {"app": recipe_image}, docker_client, pinned_proxy, rehearsals
    )
    assert _statuses(result) == {
        "install": "passed",
        "smoke": "passed",
        "persistence": "passed",
        "upgrade": "n/a",
        "backup_restore": expected,
        "removal": "passed" if expected == "passed" else "skipped",
    }, _why(result)
    if expected == "failed":
        assert "/srv/www/.dump/data" in _check(result, "backup_restore").detail
    else:
        assert "(3 backup hook command(s))" in _check(result, "backup_restore").detail


def _workers(client: docker.DockerClient, image_id: str) -> list[Any]:
    """Containers the spawner started: the app's image, `sleep 300`, no labels of Swarm's."""
    found = []
    for container in client.containers.list(all=True, sparse=True):
        labels = container.attrs.get("Labels") or {}
        if (
            container.attrs.get("ImageID") == image_id
            and container.attrs.get("Command") == WORKER_COMMAND
            and "com.docker.swarm.task.id" not in labels
        ):
            found.append(container)
    return found


@pytest.fixture
def workers(docker_client: docker.DockerClient, recipe_image: str) -> Iterator[Any]:
    """Lists the spawner's workers; removes any left at the end, whatever the test found."""
    image_id = docker_client.images.get(recipe_image).id
    before = {c.id for c in _workers(docker_client, image_id)}

    def new() -> list[Any]:
        return [c for c in _workers(docker_client, image_id) if c.id not in before]

    yield new
    for container in new():
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(container.id).remove(force=True)


LEAVE_A_WORKER = """

import docker as _docker

_seed = seed


def seed(app):  # noqa: F811 - the recipe's own seed, then a container the app "started"
    _seed(app)
    image = app.deployer.container(app.app, "app").attrs["Image"]
    _docker.from_env().containers.run(image, ["sleep", "300"], detach=True)
"""


def test_a_container_left_behind_fails_removal(
    settings: Settings,
    ci: Shelf,
    recipe_image: str,
    docker_client: docker.DockerClient,
    pinned_proxy: PinnedProxy,
    rehearsals: list[Rehearsal],
    workers: Any,
    tmp_path: Path,
) -> None:
    """An app that starts containers of its own through the engine (not through its stack)
    leaves them behind: removal fails and the matrix removes them. An installation gives no
    app the engine's socket (the guard refuses it, see the next test), so the container is
    started here from the recipe's seed hook, as such an app would."""
    folder = copy_of_recipe(settings, tmp_path)
    hooks = folder / "tests" / "hooks.py"
    hooks.write_text(hooks.read_text() + LEAVE_A_WORKER)
    result = _matrix(
        ci, load_recipe(folder), {"app": recipe_image}, docker_client, pinned_proxy, rehearsals
    )
    assert _statuses(result) == {
        "install": "passed",
        "smoke": "passed",
        "persistence": "passed",
        "upgrade": "n/a",
        "backup_restore": "passed",
        "removal": "failed",
    }, _why(result)
    removal = result.checks[-1]
    assert "left behind after removal: container" in removal.detail
    assert result.level == len(CHECKS) - 1
    # the matrix removed what the app left behind
    left = workers()
    assert not left, (
        f"the matrix left {len(left)} container(s) the app started: "
        f"{[(c.attrs.get('Names') or ['?'])[0] for c in left]}"
    )


def test_a_service_given_the_engines_socket_is_refused_at_install(
    settings: Settings,
    ci: Shelf,
    recipe_image: str,
    docker_client: docker.DockerClient,
    pinned_proxy: PinnedProxy,
    rehearsals: list[Rehearsal],
    workers: Any,
    tmp_path: Path,
) -> None:
    """CI refuses what an installation refuses: the matrix deploys through the agent's own
    guard, so a service mounting the engine's socket never starts (and lint says so too)."""
    folder = copy_of_recipe(settings, tmp_path)
    spawner = {
        "image": recipe_image,  # pinned by digest in the candidate's contract
        "user": "0",
        "volumes": ["/var/run/docker.sock:/var/run/docker.sock"],
        # the installation's rendering escapes `$` so docker passes the script as written
        "command": ["perl", "-e", SPAWN_A_WORKER],
    }
    edit_yaml(folder / "compose.yml", lambda c: c["services"].update(spawner=spawner))
    lint = lint_verdicts(folder.parent.parent, [APP])[APP]
    result = _matrix(
        ci,
        load_recipe(folder),
        {"app": recipe_image, "spawner": recipe_image},
        docker_client,
        pinned_proxy,
        rehearsals,
        lint=lint,
    )
    install = result.checks[0]
    assert install.status == "failed", _why(result)
    assert "service 'spawner': mounts the host path /var/run/docker.sock" in install.detail
    assert result.level == 0
    assert result.lint is not None and result.lint.status == "failed"
    assert "docker.sock" in result.lint.detail or "socket" in result.lint.detail.lower()
    assert not workers(), "a service with the engine's socket ran"


def test_a_recipe_without_seed_hooks_stops_at_persistence(
    settings: Settings,
    ci: Shelf,
    recipe_image: str,
    docker_client: docker.DockerClient,
    pinned_proxy: PinnedProxy,
    rehearsals: list[Rehearsal],
    tmp_path: Path,
) -> None:
    folder = copy_of_recipe(settings, tmp_path)
    (folder / "tests" / "hooks.py").unlink()
    result = _matrix(
        ci, load_recipe(folder), {"app": recipe_image}, docker_client, pinned_proxy, rehearsals
    )
    statuses = _statuses(result)
    assert statuses["install"] == statuses["smoke"] == "passed"
    assert statuses["persistence"] == "skipped"
    assert statuses["upgrade"] == statuses["backup_restore"] == statuses["removal"] == "skipped"
    assert result.level == 2


def test_upgrade_from_the_released_version_keeps_seeded_data_and_every_probe_passes(
    settings: Settings,
    ci: Shelf,
    recipe_image: str,
    docker_client: docker.DockerClient,
    pinned_proxy: PinnedProxy,
    rehearsals: list[Rehearsal],
) -> None:
    recipe = load_recipe(settings.recipes_dir / APP)
    released = released_version(settings, docker_client, recipe_image)
    result = _matrix(
        ci, recipe, {"app": recipe_image}, docker_client, pinned_proxy, rehearsals, released
    )
    upgrade = _check(result, "upgrade")
    assert upgrade.status == "passed", _why(result)
    assert f"0.9.0+1.22.1 → {recipe.version} on Swarm: seeded data kept" in upgrade.detail
    assert result.passed and result.level == len(CHECKS)  # not linted: one short of the top
    # the proof the release writes into the catalogue: probes every 100 ms, none failed
    proof = result.upgrade
    assert proof is not None and proof.from_version == "0.9.0+1.22.1"
    assert proof.probes > 50 and proof.failed == 0, proof
    assert proof.seconds > 0
    assert f"{proof.probes} probes through the proxy, 0 failed" in upgrade.detail


def test_a_new_version_that_drops_the_data_volume_fails_upgrade(
    settings: Settings,
    ci: Shelf,
    recipe_image: str,
    docker_client: docker.DockerClient,
    pinned_proxy: PinnedProxy,
    rehearsals: list[Rehearsal],
    tmp_path: Path,
) -> None:
    released = released_version(settings, docker_client, recipe_image)
    folder = copy_of_recipe(settings, tmp_path)
    for name in ("compose.yml", "recipe.yml"):
        path = folder / name
        path.write_text(
            path.read_text().replace("content:", "site:").replace("volume: content", "volume: site")
        )
    result = _matrix(
        ci,
        load_recipe(folder),
        {"app": recipe_image},
        docker_client,
        pinned_proxy,
        rehearsals,
        released,
    )
    statuses = _statuses(result)
    assert statuses["persistence"] == "passed"
    assert statuses["upgrade"] == "failed", _why(result)
    assert "/seeded/" in _check(result, "upgrade").detail  # the seeded page is gone
    assert statuses["backup_restore"] == statuses["removal"] == "skipped"
    assert result.level == 3


def test_an_update_that_leaves_the_proxy_without_a_task_fails_upgrade(
    settings: Settings,
    ci: Shelf,
    recipe_image: str,
    docker_client: docker.DockerClient,
    pinned_proxy: PinnedProxy,
    rehearsals: list[Rehearsal],
    tmp_path: Path,
) -> None:
    """stop-first with a slow start: the old task is gone before the new one serves, so the
    proxy answers errors meanwhile; the data survives, but the upgrade check fails."""
    released = released_version(settings, docker_client, recipe_image)
    folder = copy_of_recipe(settings, tmp_path)

    def stop_first(compose: dict[str, Any]) -> None:
        app = compose["services"]["app"]
        app["command"] = ["sh", "-c", "sleep 5; exec nginx -e stderr -g 'daemon off;'"]
        app["deploy"]["update_config"]["order"] = "stop-first"

    edit_yaml(folder / "compose.yml", stop_first)
    result = _matrix(
        ci,
        load_recipe(folder),
        {"app": recipe_image},
        docker_client,
        pinned_proxy,
        rehearsals,
        released,
    )
    statuses = _statuses(result)
    assert statuses["install"] == statuses["smoke"] == statuses["persistence"] == "passed"
    assert statuses["upgrade"] == "failed", _why(result)
    assert statuses["backup_restore"] == statuses["removal"] == "skipped"
    proof = result.upgrade
    assert proof is not None and proof.from_version == "0.9.0+1.22.1"
    assert 0 < proof.failed < proof.probes, proof
    detail = _check(result, "upgrade").detail
    assert f"{proof.failed} of {proof.probes} probes through the proxy failed" in detail
    assert "HTTP 502" in detail or "HTTP 504" in detail or "Error" in detail
    assert result.level == 3


def test_an_exclusive_volume_may_restart_stop_first_and_its_downtime_is_recorded(
    settings: Settings,
    ci: Shelf,
    recipe_image: str,
    docker_client: docker.DockerClient,
    pinned_proxy: PinnedProxy,
    rehearsals: list[Rehearsal],
    tmp_path: Path,
) -> None:
    """The same slow stop-first update, but the service owns an exclusive data volume (as a
    database does): its restart is the downtime the recipe declared, so the check passes and
    records it; the seeded data must still be there afterwards."""
    folder = copy_of_recipe(settings, tmp_path)

    def stop_first(compose: dict[str, Any]) -> None:
        app = compose["services"]["app"]
        app["command"] = ["sh", "-c", "sleep 3; exec nginx -e stderr -g 'daemon off;'"]
        app["deploy"]["update_config"]["order"] = "stop-first"
        app["deploy"]["rollback_config"]["order"] = "stop-first"

    edit_yaml(folder / "compose.yml", stop_first)
    edit_yaml(folder / "recipe.yml", lambda m: m["data"][0].update(exclusive=True))
    released = released_version(settings, docker_client, recipe_image, folder=folder)
    edit_yaml(  # the new version changes the service's definition: it is replaced
        folder / "compose.yml",
        lambda c: c["services"]["app"]["healthcheck"].update(interval="4s"),
    )
    result = _matrix(
        ci,
        load_recipe(folder),
        {"app": recipe_image},
        docker_client,
        pinned_proxy,
        rehearsals,
        released,
    )
    assert result.passed, _why(result)
    proof = result.upgrade
    assert proof is not None and proof.stop_first == ("app",)
    assert 0 < proof.failed < proof.probes and proof.downtime > 0, proof
    assert "while app restarted stop-first" in _check(result, "upgrade").detail
