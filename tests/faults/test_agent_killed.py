"""Fault case 4: the agent is killed (SIGKILL) at each step of an update, then runs again.

A real `commonshelf run` process is killed with its whole session, as a power cut or an
OOM kill would: after its backup started (a test-only pause point: COMMONSHELF_PAUSE_AT,
see installation/volumes.pause_point), after its deploy was sent (Swarm's spec of the app
names the new image), and after the new version serves but before the agent recorded it.
Each time the next `run` converges: the app serves the version its record names, the
seeded files are intact, at most one backup was left partial and it is gone (with the
container that was copying it), and `status` says what happened in one sentence.
"""

from __future__ import annotations

import time
from pathlib import Path

from commonshelf.installation import swarm, updates
from commonshelf.installation.state import read_record

from .engine_harness import APP, World, wait_for, world  # noqa: F401
from .report import FaultCase, record


def _converges(world: World, old: str, new: str) -> tuple[float, list[dict[str, object]]]:  # noqa: F811
    """The next `run` finishes the update; its duration and events."""
    started = time.monotonic()
    code, events = world.run()
    assert code == 0, events
    updated = [e for e in events if e.get("action") == "update"]
    assert [(e["outcome"], e["from_version"], e["to_version"]) for e in updated] == [
        ("done", old, new)
    ], events
    world.assert_serves(new)
    recovered = time.monotonic() - started
    assert not world.partials() and not world.holders()
    assert not updates.pending_path(world.home, APP).exists()
    assert world.last_sentence() == updated[-1]["sentence"]
    return recovered, events


def test_killed_while_backing_up(world: World, tmp_path: Path) -> None:  # noqa: F811
    old = world.record().version
    new = world.publish()
    before = world.state()
    marker = tmp_path / "paused"
    world.count_from()
    agent = world.spawn_run(pause_at=f"backup:{marker}")
    try:
        wait_for(marker.exists, 120, "the agent reaching its backup")
        [partial] = world.partials()
        assert world.holders(), "no container was copying the volume"
    finally:
        world.kill(agent)
    record_, spec, backups = before
    assert world.record() == record_ and world.spec() == spec and world.serves()
    assert not updates.pending_path(world.home, APP).exists()

    recovered, events = _converges(world, old, new)
    requests = world.requests_made()  # the killed run's and the one that converged
    assert f"Removed the partial backup {partial[1:].removesuffix('.partial')}" in str(
        events[0]["sentence"]
    ), events
    assert len(world.backup_names()) == len(backups) + 1  # the update's own, complete
    lost = world.lost_bytes()
    assert lost == 0
    record(
        FaultCase(
            case="agent killed: during the backup",
            injected="SIGKILL of `commonshelf run` while it wrote the backup before an update "
            "(a half-written tar in a .partial folder, its copying container running)",
            recovered_s=round(recovered, 1),
            data_lost_bytes=lost,
            requests=requests,
            outcome=world.last_sentence(),
        )
    )


def test_killed_after_the_deploy_was_sent(world: World) -> None:  # noqa: F811
    old = world.record().version
    new = world.publish()
    image = world.image(new)
    world.count_from()
    agent = world.spawn_run()
    try:
        wait_for(lambda: world.spec()[0] == image, 180, "the deploy of the new version")
    finally:
        world.kill(agent)
    assert world.record().version == old
    left = read_record(updates.pending_path(world.home, APP), updates.Pending)
    assert (left.from_version, left.to_version) == (old, new) and left.backup

    recovered, _ = _converges(world, old, new)
    requests = world.requests_made()
    assert world.record().backup == left.backup  # the backup taken before the deploy
    assert updates.RESUMED in world.last_sentence()
    lost = world.lost_bytes()
    assert lost == 0
    record(
        FaultCase(
            case="agent killed: after the deploy was sent",
            injected="SIGKILL of `commonshelf run` as soon as Swarm's spec of the app named "
            "the new version's image",
            recovered_s=round(recovered, 1),
            data_lost_bytes=lost,
            requests=requests,
            outcome=world.last_sentence(),
        )
    )


def test_killed_before_the_record_was_written(world: World) -> None:  # noqa: F811
    old = world.record().version
    new = world.publish()
    image = world.image(new)
    deployer = world.agent().deployer()

    def new_version_runs() -> bool:
        [state] = [swarm.service_state(s) for s in swarm.stack_services(world.client, world.stack)]
        return (
            state.image == image
            and state.healthy
            and state.update not in swarm.IN_PROGRESS
            and deployer.running(APP, {world.service: image})
        )

    world.count_from()
    agent = world.spawn_run()
    try:
        wait_for(new_version_runs, 180, "the new version running healthy", every=0.05)
    finally:
        world.kill(agent)
    assert world.record().version == old, "the agent recorded the update before it was killed"
    assert updates.pending_path(world.home, APP).exists()

    recovered, _ = _converges(world, old, new)
    requests = world.requests_made()
    assert updates.RESUMED in world.last_sentence()
    lost = world.lost_bytes()
    assert lost == 0
    record(
        FaultCase(
            case="agent killed: before the record was written",
            injected="SIGKILL of `commonshelf run` once the new version ran healthy, before "
            "the agent wrote its record",
            recovered_s=round(recovered, 1),
            data_lost_bytes=lost,
            requests=requests,
            outcome=world.last_sentence(),
        )
    )
