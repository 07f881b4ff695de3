"""Fault cases 2 and 3: the registry and the engine fail under an update.

Registry (case 2): the update procedure fetches the new version's images before it backs
up or deploys anything, so a registry that is down, or that lost the image, stops the update
while the running version is untouched (same record, same Swarm spec, no backup taken); once
the registry is back (or the image pushed again), the next `run` applies it. For the engine
to need the registry, the new version's image is removed from it first (`docker rmi` of the
references the installation uses), as on an installation that never pulled it.

Engine (case 3): dockerd is stopped and started while `run` deploys an update, and while
it backs the app up. The agent stops with one line; Swarm brings the services back by
itself; the next `run` converges (the interrupted update is finished, or the backup cut
short is removed and the update applied) with the data intact. Restarting dockerd stops
every container on the machine for a while: on a machine where other work uses the engine,
set COMMONSHELF_FAULTS_NO_RESTART=1 to skip these two cases.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from commonshelf.installation import updates
from commonshelf.installation.policy import load_policy
from commonshelf.platform import environment

from .engine_harness import APP, World, wait_for, world  # noqa: F401
from .report import FaultCase, record


def _refused_untouched(world: World, new: str, says: str) -> str:  # noqa: F811
    """`run` refuses the update saying `says`, and nothing changed; the sentence."""
    before = world.state()
    code, events = world.run()
    assert code == 1, events
    [event] = events
    assert (event["outcome"], event["to_version"]) == ("refused", new), event
    sentence = str(event["sentence"])
    assert says in sentence and sentence.endswith("nothing was changed."), sentence
    world.assert_untouched(before)
    assert world.lost_bytes() == 0
    assert world.last_sentence() == sentence
    return sentence


def _converges(world: World, old: str, new: str) -> float:  # noqa: F811
    """The next `run` applies the update; its duration."""
    started = time.monotonic()
    code, events = world.run()
    assert code == 0, events
    assert [(e["outcome"], e["from_version"], e["to_version"]) for e in events] == [
        ("done", old, new)
    ], events
    world.assert_serves(new)
    return time.monotonic() - started


# ---- the registry and the engine, as the cases fault them


def forget_locally(world: World, version: str) -> None:  # noqa: F811
    """`docker rmi` of the version's image as the installation names it (its registry tag
    and digest): the engine must fetch it again. CI's build tag stays (the publisher's
    copy), so a case can push it again."""
    pinned = world.image(version)
    image = world.client.images.get(pinned)
    for ref in [*image.tags, *image.attrs.get("RepoDigests", [])]:
        if ref.startswith(f"{world.shelf.registry}/"):
            with contextlib.suppress(docker.errors.ImageNotFound):  # gone with its tag
                world.client.images.remove(ref)
    with pytest.raises(docker.errors.ImageNotFound):
        world.client.images.get(pinned)


def stop_registry(world: World) -> None:  # noqa: F811
    """Stop the world's registry daemon the way environment.py stops its daemons."""
    environment.stop_daemon(world.shelf, f"registry-{world.registry_port}")
    assert not environment.registry_answers(world.shelf.registry)


def restart_engine(
    world: World,  # noqa: F811
    stopping: Callable[[], None] = lambda: None,
    blocker: subprocess.Popen[str] | None = None,
) -> float:
    """Stop dockerd (SIGTERM: it stops every container on the machine) and start it again
    the way `environment.ensure_docker` starts it; the seconds the engine was away.
    `stopping` runs once the engine stopped answering, while dockerd shuts down (it waits
    for the archive streams it serves); should dockerd still wait after two minutes,
    `blocker` (the agent holding such a stream) is killed. The engine is started again
    whatever happened."""
    started = time.monotonic()
    pid = environment.daemon_pid(world.shelf, "dockerd")
    if pid is None:  # not started by commonshelf: the machine's service manager owns it
        subprocess.run(["systemctl", "restart", "docker"], check=True, timeout=300)
        return time.monotonic() - started
    os.kill(pid, signal.SIGTERM)
    try:
        wait_for(lambda: not _engine_answers(), 60, "the engine going away", every=0.1)
        stopping()
        wait_for(lambda: not _alive(pid), 120, "dockerd exiting", every=0.2)
    finally:
        if _alive(pid) and blocker is not None:
            world.kill(blocker)
        wait_for(lambda: not _alive(pid), 120, "dockerd exiting", every=0.2)
        # its pid file goes with it: environment.daemon_pid would count an exited dockerd
        # that its parent has not reaped yet (a zombie) as running, and start none
        (world.shelf.state_dir / "run" / "dockerd.pid").unlink(missing_ok=True)
        environment.ensure_docker(world.shelf)
    return time.monotonic() - started


def _engine_answers() -> bool:
    try:
        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (docker.errors.DockerException, requests.RequestException):
        return False


def _alive(pid: int) -> bool:
    """Whether `pid` still runs; a zombie does not (a dockerd this process started and that
    exited is reaped here, or it would count as running until this process ends)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def engine_restarts() -> str:
    """Why dockerd may not be restarted here ("" when it may): it stops every container."""
    if os.environ.get("COMMONSHELF_FAULTS_NO_RESTART"):
        return "COMMONSHELF_FAULTS_NO_RESTART is set (other work uses this engine)"
    if os.geteuid() != 0:
        return "restarting dockerd needs root"
    return ""


def test_a_registry_that_is_down_stops_the_update_before_anything_changes(
    world: World,  # noqa: F811
) -> None:
    old = world.record().version
    new = world.publish()
    world.count_from()
    forget_locally(world, new)
    stop_registry(world)
    try:
        sentence = _refused_untouched(world, new, "Cannot fetch the image of service 'app'")
    finally:
        environment.ensure_registry(world.shelf)
    recovered = _converges(world, old, new)
    asked = world.requests_made()  # the refused run's and the converging run's
    lost = world.lost_bytes()
    assert lost == 0
    record(
        FaultCase(
            case="registry: down during an update",
            injected="the registry daemon stopped and the new version's image removed from "
            "the engine, then `run` with an update pending",
            recovered_s=round(recovered, 1),
            data_lost_bytes=lost,
            requests=asked,
            outcome=sentence,
        )
    )


def test_an_image_lost_from_the_registry_stops_the_update(world: World) -> None:  # noqa: F811
    old = world.record().version
    new = world.publish()
    pinned = world.image(new)
    world.count_from()
    repository, _, digest = pinned.removeprefix(f"{world.shelf.registry}/").partition("@")
    url = f"http://{world.shelf.registry}/v2/{repository}/manifests/{digest}"
    assert requests.delete(url, timeout=10).status_code == 202
    assert requests.head(url, timeout=10).status_code == 404
    forget_locally(world, new)
    sentence = _refused_untouched(world, new, "Cannot fetch the image of service 'app'")
    # the publisher pushes the image again: the same content has the same digest
    tag = new.replace("+", "_")
    again = images_push(world, f"commonshelf/{APP}-app:{tag}", repository, tag)
    assert again == digest
    recovered = _converges(world, old, new)
    asked = world.requests_made()  # the refused run's and the converging run's
    lost = world.lost_bytes()
    assert lost == 0
    record(
        FaultCase(
            case="registry: lost the new image",
            injected="the new version's manifest deleted from the registry (its API) and its "
            "image removed from the engine, then `run` with an update pending",
            recovered_s=round(recovered, 1),
            data_lost_bytes=lost,
            requests=asked,
            outcome=sentence,
        )
    )


def images_push(world: World, local: str, repository: str, tag: str) -> str:  # noqa: F811
    from commonshelf.ci import images

    return images.push(world.client, local, world.shelf.registry, repository, tag)


restarts = pytest.mark.skipif(bool(engine_restarts()), reason=engine_restarts() or "-")


@restarts
def test_an_engine_restart_during_an_update(world: World) -> None:  # noqa: F811
    old = world.record().version
    new = world.publish()
    image = world.image(new)
    world.count_from()
    agent = world.spawn_run()
    try:
        wait_for(lambda: world.spec()[0] == image, 180, "the deploy of the new version")
        away = restart_engine(world)
        agent.wait(300)  # the engine went away under it: it stops
    finally:
        world.kill(agent)
    said = agent.stderr.read() if agent.stderr else ""
    assert agent.returncode != 0 and len(said.strip().splitlines()) == 1, said
    assert world.record().version == old
    wait_for(world.serves, 180, "Swarm bringing the app back by itself", every=1)
    recovered = _converges(world, old, new)
    asked = world.requests_made()  # the interrupted run's and the converging run's
    assert updates.RESUMED in world.last_sentence()
    lost = world.lost_bytes()
    assert lost == 0
    record(
        FaultCase(
            case="engine restart: during an update",
            injected=f"dockerd stopped and started ({away:.0f} s away) once `run` had sent the "
            "new version to Swarm",
            recovered_s=round(recovered, 1),
            data_lost_bytes=lost,
            requests=asked,
            outcome=world.last_sentence(),
        )
    )


@restarts
def test_an_engine_restart_during_a_backup(world: World, tmp_path: Path) -> None:  # noqa: F811
    """dockerd's shutdown waits for the archive stream of a volume copy to be read, so the
    copy completes; the engine is gone when the agent then removes the copying container:
    the backup is refused and removed, nothing changed and no version is marked bad; the
    next run removes the container left behind and applies the update."""
    old = world.record().version
    new = world.publish()
    record_, spec, _ = world.state()
    marker = tmp_path / "paused"
    world.count_from()
    agent = world.spawn_run(pause_at=f"backup:{marker}")
    try:
        wait_for(marker.exists, 120, "the agent reaching its backup")
        assert world.partials()
        away = restart_engine(world, stopping=marker.unlink, blocker=agent)
        agent.wait(300)
    finally:
        world.kill(agent)
    said = agent.stderr.read() if agent.stderr else ""
    assert agent.returncode == 1, said
    sentence = world.last_sentence()
    assert sentence == (
        f"{APP} stays at {old}: Could not back up the data of {APP} (the Docker engine stopped "
        "answering); nothing was changed."
    )
    wait_for(world.serves, 180, "Swarm bringing the app back by itself", every=1)
    assert world.record() == record_ and world.spec()[0] == spec[0]
    assert new not in load_policy(world.home, APP).bad
    recovered = _converges(world, old, new)
    asked = world.requests_made()  # the interrupted run's and the converging run's
    assert not world.partials() and not world.holders()
    lost = world.lost_bytes()
    assert lost == 0
    record(
        FaultCase(
            case="engine restart: during a backup",
            injected=f"dockerd stopped and started ({away:.0f} s away) while `run` copied the "
            "app's volume for the backup before an update",
            recovered_s=round(recovered, 1),
            data_lost_bytes=lost,
            requests=asked,
            outcome=sentence,
        )
    )
