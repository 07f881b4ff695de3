"""Issue 11, cases 7 and 6: the release job is killed while it writes public/, and two agents
start at once.

Case 7 runs the release job itself (`commonshelf.ci.promote.release`, what `invoke release`
runs) in a child process that SIGKILLs itself at one write into public/ (right after it,
or half-way through it, before its rename: `catalogue_harness.main`), once per write of a
release: each new target, targets.json, snapshot.json, timestamp.json. After each kill,
the published repository is still the previous release for every reader (the running
installation, and a fresh one), and at the end a release completes over the debris.
Case 6 starts two real `commonshelf run` processes together with that release pending:
one applies it, the other changes nothing and names the holder of the lock.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.server import serving
from commonshelf.catalogue.signing import Publisher, load_or_create_keys
from commonshelf.installation import journal
from commonshelf.installation.subscription import Subscription
from commonshelf.platform.settings import Settings

from ..conftest import REPO
from .catalogue_harness import World, shared_world
from .report import FaultCase, record


@pytest.fixture(scope="session")
def world(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, docker_client: docker.DockerClient
) -> Iterator[World]:
    yield from shared_world(tmp_path_factory.mktemp("faults"), settings, docker_client)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m tests.faults.catalogue_harness ARGS…` (see its `main`)."""
    return subprocess.run(
        [sys.executable, "-m", "tests.faults.catalogue_harness", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _fresh_catalogue(world: World, folder: Path) -> bytes:
    """What a new installation, pinned to the first root, reads from the repository now."""
    root = (world.settings.public_dir / "metadata" / "1.root.json").read_bytes()
    return Subscription.create(folder, world.server.url, root, verify=True).fetch("catalog.json")


def _release(world: World, when: str, suffix: str) -> subprocess.CompletedProcess[str]:
    """The release job in a child process, killed at its write of a file named …`suffix`
    into public/ (`when`: after, during, never); its stdout names each file it writes."""
    s = world.settings
    return _harness("release", when, suffix, str(s.root), str(s.state_dir), s.registry, world.app)


# (how, at the write of which file, where in the release that is), in the order the release
# writes them. Targets are content-addressed: the compose file, identical in each attempt,
# is written by the first attempt only; catalog.json (it carries the release time) by each.
KILLS = [
    ("after", "compose.yml", "right after the first new target (the compose file)"),
    ("after", "catalog.json", "right after the last new target (catalog.json)"),
    ("after", ".targets.json", "right after the new targets.json"),
    ("during", ".snapshot.json", "half-way through writing the new snapshot.json"),
    ("after", ".snapshot.json", "right after the new snapshot.json, before timestamp.json"),
    ("during", "timestamp.json", "half-way through writing the new timestamp.json"),
]


def test_a_release_killed_while_writing_public_leaves_the_previous_one(
    world: World, tmp_path: Path
) -> None:
    public = world.settings.public_dir
    version = world.bump()
    world.build()  # built and recorded as vetted here; released by the child
    catalogue = _fresh_catalogue(world, tmp_path / "first")
    before = world.state()
    published = _files(public)  # the previous release
    for number, (when, writing, where) in enumerate(KILLS):
        killed = _release(world, when, writing)
        assert killed.returncode == -signal.SIGKILL, (killed.stdout, killed.stderr)
        assert killed.stdout.split()[-1].endswith(writing), killed.stdout
        now = _files(public)
        assert {k: now.get(k) for k in published} == published  # nothing replaced in place
        assert _fresh_catalogue(world, tmp_path / f"fresh{number}") == catalogue
        world.server.take()
        started = time.monotonic()
        code, out, err = world.cli("run")
        recovered = time.monotonic() - started
        requests = len(world.server.take())
        assert code == 0 and "1 app(s) up to date." in out, (out, err)
        after = world.state()
        assert after == before and world.serves()
        record(
            FaultCase(
                case=f"release killed {where}",
                injected=f"SIGKILL of the release job {where}; it left "
                f"{len(set(now) - set(published))} file(s) no reader reaches in public/",
                recovered_s=round(recovered, 2),
                data_lost_bytes=world.lost_bytes(after.data),
                requests=requests,
                outcome=f"`run`: {out.strip()} (still the previous release)",
            )
        )
        assert world.lost_bytes(after.data) == 0
    # the next release completes over what the killed ones left, and installations see it
    done = _release(world, "never", "")
    assert done.returncode == 0 and f"('{world.app}', '{version}')" in done.stdout, done.stderr
    assert not list(public.rglob(".*.tmp"))
    assert Catalog.from_bytes(_fresh_catalogue(world, tmp_path / "last")).latest(world.app) == (
        version
    )
    code, out, err = world.cli("update", "--check", "--json")
    assert code == 0 and json.loads(out)[0]["target"] == version, (out, err)


def test_a_first_publish_killed_before_its_timestamp_can_be_published_again(
    tmp_path: Path,
) -> None:
    """The very first publish of a repository, killed after its root and targets metadata
    (no timestamp yet: nobody can have read it), leaves no obstacle to the next one."""
    public, keys = tmp_path / "public", tmp_path / "keys"
    signing_keys = load_or_create_keys(keys, env={})[0]
    killed = _harness("publish", "after", ".targets.json", str(public), str(keys), "first")
    assert killed.returncode == -signal.SIGKILL, (killed.stdout, killed.stderr)
    written = killed.stdout.split()
    assert written[0].endswith(".catalog.json") and written[1:] == ["1.root.json", "1.targets.json"]
    assert not (public / "metadata" / "timestamp.json").exists()
    time.sleep(1.1)  # the next publish signs other expiry times: other bytes, same names
    result = Publisher(public, signing_keys).publish({"catalog.json": b"second"})
    assert (result.root_version, result.targets_version, result.timestamp_version) == (1, 1, 1)
    root = (public / "metadata" / "1.root.json").read_bytes()
    with serving(public) as url:
        fresh = Subscription.create(tmp_path / "home", url, root, verify=True)
        assert fresh.fetch("catalog.json") == b"second"


def test_two_agents_started_at_once_one_acts_the_other_names_the_lock_holder(
    world: World,
) -> None:
    record_path = world.home / "apps" / f"{world.app}.json"
    running = json.loads(record_path.read_text())["version"]
    latest = Catalog.load(world.settings.catalog_path).latest(world.app)
    if latest == running:  # run alone: publish the update the release case would have
        world.bump()
        latest = world.publish()
    before = world.state()
    history = len(journal.events(world.home))
    world.server.take()
    started = time.monotonic()
    agents = [
        subprocess.Popen(
            world.command("run"),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        outputs = [agent.communicate(timeout=400) for agent in agents]
    finally:
        for agent in agents:  # none may outlive the test
            if agent.poll() is None:
                agent.kill()
                agent.wait(30)
    took = time.monotonic() - started
    codes = sorted((agent.returncode, n) for n, agent in enumerate(agents))
    assert [code for code, _ in codes] == [0, 2], outputs
    winner, loser = agents[codes[0][1]], outputs[codes[1][1]]
    [line] = loser[1].strip().splitlines()
    assert f"Another commonshelf agent is acting on {world.home}" in line, line
    assert f"pid {winner.pid} on " in line and "`commonshelf run` since" in line, line
    assert "changed nothing" in line and " Fix: " in line, line
    assert f"Updated {world.app} from {running} to {latest}" in outputs[codes[0][1]][0]
    new = journal.events(world.home)[history:]
    assert [(e.action, e.outcome, e.to_version) for e in new] == [("update", "done", latest)]
    assert json.loads(record_path.read_text())["version"] == latest
    after = world.state()
    assert after.data == before.data and world.serves()
    requests = len(world.server.take())
    record(
        FaultCase(
            case="two agents at once",
            injected="two `commonshelf run` processes started together, an update pending",
            recovered_s=round(took, 2),
            data_lost_bytes=world.lost_bytes(after.data),
            requests=requests,
            outcome=world.plain(line),
        )
    )
    assert world.lost_bytes(after.data) == 0
