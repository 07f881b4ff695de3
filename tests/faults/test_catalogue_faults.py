"""Issue 11, cases 1 and 8: the catalogue server misbehaves, or the installation's clock is
wrong. Each fault is real (a server on 127.0.0.1 that is down, fails, stalls, cuts files,
pads them, replays old ones or serves another repository; a process whose clock is far
ahead) and hits a real installation running a real app with seeded data. For each, `run`
changes nothing (the app's record, its services' spec versions, the data's checksums; the
app keeps serving), exits non-zero with one line naming the cause and the fix, `status`
still works and says what happened; once the fault is gone the next `run` converges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from tuf.api.metadata import Metadata, Timestamp
from tuf.api.serialization.json import JSONSerializer

from commonshelf.catalogue.signing import Publisher, load_or_create_keys
from commonshelf.platform.settings import Settings

from ..conftest import REPO
from .catalogue_harness import Fault, World, shared_world
from .report import FaultCase, record


@pytest.fixture(scope="session")
def world(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, docker_client: docker.DockerClient
) -> Iterator[World]:
    yield from shared_world(tmp_path_factory.mktemp("faults"), settings, docker_client)


def _status(world: World) -> dict[str, object]:
    """`status --json`'s row for the installation itself (app "")."""
    code, out, err = world.cli("status", "--json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    assert [r["app"] for r in rows][:1] == [world.app], rows
    [mine] = [r for r in rows if r["app"] == ""] or [{}]
    return mine


def _resign_timestamp(world: World) -> None:
    """A newer timestamp, as the release job's periodic re-signing publishes."""
    keys = load_or_create_keys(world.settings.keys_dir)[0]
    path = world.settings.public_dir / "metadata" / "timestamp.json"
    timestamp = Metadata[Timestamp].from_file(str(path))
    timestamp.signed.version += 1
    timestamp.sign(keys.signers["timestamp"])
    path.write_bytes(timestamp.to_bytes(JSONSerializer()))


def _replayed(world: World, tmp: Path) -> Fault:
    """The timestamp the installation holds now, served after it has seen a newer one."""
    old = (world.settings.public_dir / "metadata" / "timestamp.json").read_bytes()
    _resign_timestamp(world)
    assert world.cli("run")[0] == 0  # the installation now trusts the newer timestamp
    return Fault(kind="replay", replay={"/metadata/timestamp.json": old})


def _other_repository(world: World, tmp: Path) -> Fault:
    other = tmp / "other"
    keys = load_or_create_keys(other / "keys", env={})[0]
    Publisher(other / "public", keys).publish({"catalog.json": b'{"apps": {}}'})
    return Fault(kind="folder", folder=other / "public")


@dataclass(frozen=True)
class Case:
    name: str
    injected: str
    says: str  # in the one-line error and in `status`
    fault: Callable[[World, Path], Fault | None]  # None: the server is down
    timeout: str = ""  # COMMONSHELF_FETCH_TIMEOUT for the faulty run


CASES = [
    Case(
        "down",
        "the catalogue server's port was closed (connection refused)",
        "the repository is unreachable ([Errno 111] Connection refused)",
        lambda w, t: None,
    ),
    Case(
        "answers 500",
        "every request was answered HTTP 500",
        "the server answered HTTP 500",
        lambda w, t: Fault(kind="status", status=500),
    ),
    Case(
        "answers slowly",
        "every answer was delayed 6 s; the agent's timeout was 2 s",
        "did not answer within 2 s",
        lambda w, t: Fault(kind="delay", seconds=6),
        timeout="2",
    ),
    Case(
        "truncated files",
        "every file was cut to half its announced length and the connection closed",
        "the connection broke before the whole file arrived",
        lambda w, t: Fault(kind="truncate"),
    ),
    Case(
        "oversized timestamp",
        "timestamp.json was padded with 2 MB (its cap is 16 KB)",
        "sent a file larger than allowed",
        lambda w, t: Fault(kind="oversize"),
    ),
    Case(
        "replayed timestamp",
        "an older validly signed timestamp.json was served after a newer one",
        "older than what this installation already trusts",
        _replayed,
    ),
    Case(
        "another repository",
        "the metadata of another repository (other keys) was served",
        "not signed by trusted keys",
        _other_repository,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_catalogue_fault_changes_nothing_and_is_explained(
    case: Case, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = world.state()
    assert world.serves()
    fault = case.fault(world, tmp_path)
    world.server.take()
    if fault is None:
        world.server.down()
    else:
        world.server.fault = fault
    if case.timeout:
        monkeypatch.setenv("COMMONSHELF_FETCH_TIMEOUT", case.timeout)
    try:
        code, out, err = world.cli("run")
        requests = len(world.server.take())
        assert code == 2, (out, err)
        assert len(err.strip().splitlines()) == 1, err
        [line] = err.strip().splitlines()
        assert line.startswith("error: ") and case.says in line and " Fix: " in line, line
        assert world.state() == before
        assert world.serves()
        status = _status(world)
        assert status["outcome"] == "failed" and case.says in str(status["last"]), status
        assert status["healthy"] is None
    finally:
        world.server.fault = Fault()
        world.server.up()
        monkeypatch.delenv("COMMONSHELF_FETCH_TIMEOUT", raising=False)
    started = time.monotonic()
    code, out, err = world.cli("run")
    assert code == 0 and "1 app(s) up to date." in out, (out, err)
    assert world.serves()
    recovered = time.monotonic() - started
    after = world.state()
    assert after == before
    status = _status(world)
    assert status["outcome"] == "done" and "Polls work again" in str(status["last"]), status
    record(
        FaultCase(
            case=f"catalogue: {case.name}",
            injected=case.injected,
            recovered_s=round(recovered, 2),
            data_lost_bytes=world.lost_bytes(after.data),
            requests=requests,
            outcome=world.plain(line),
        )
    )
    assert world.lost_bytes(after.data) == 0


def test_the_human_status_names_the_installation_problem(world: World) -> None:
    """The table's reader sees it too: one line under the apps."""
    world.server.down()
    try:
        assert world.cli("run")[0] == 2
        code, out, _ = world.cli("status")
    finally:
        world.server.up()
    assert code == 0 and world.app in out
    [line] = [x for x in out.splitlines() if x.startswith("Installation (failed at ")]
    assert "unreachable ([Errno 111] Connection refused)" in line
    assert world.cli("run")[0] == 0


def _shifted_run(world: World, days: int) -> subprocess.CompletedProcess[str]:
    """`commonshelf run` in a process whose clock is `days` ahead (catalogue_harness.main)."""
    shifted = [sys.executable, "-m", "tests.faults.catalogue_harness", "clock", str(days)]
    return subprocess.run(
        [*shifted, "--home", str(world.home), "run"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_clock_far_ahead_is_named_and_one_far_behind_changes_nothing(world: World) -> None:
    before = world.state()
    world.server.take()
    ahead = _shifted_run(world, 400)
    requests = len(world.server.take())
    assert ahead.returncode == 2, (ahead.stdout, ahead.stderr)
    [line] = ahead.stderr.strip().splitlines()
    assert "has expired" in line and "this machine's clock says" in line, line
    assert "fix the clock (NTP)" in line and " Fix: " in line, line
    assert world.state() == before and world.serves()
    status = _status(world)  # this process's clock is right: the history says what happened
    assert status["outcome"] == "failed" and "fix the clock (NTP)" in str(status["last"])
    # a clock far behind makes nothing expire (TUF has no not-before time): the poll works
    started = time.monotonic()
    behind = _shifted_run(world, -400)
    assert behind.returncode == 0 and "1 app(s) up to date." in behind.stdout, behind.stderr
    assert world.cli("run")[0] == 0 and world.serves()
    after = world.state()
    assert after == before
    record(
        FaultCase(
            case="clock far ahead",
            injected="the agent ran with its clock 400 days ahead (then 400 days behind)",
            recovered_s=round(time.monotonic() - started, 2),
            data_lost_bytes=world.lost_bytes(after.data),
            requests=requests,
            outcome=world.plain(line),
        )
    )
    assert world.lost_bytes(after.data) == 0
