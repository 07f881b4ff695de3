"""One agent acts at a time; the second says who holds the lock. A crashed holder (even
SIGKILL) leaves no stale lock. History lines cut short by a crash are skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from commonshelf.installation import journal
from commonshelf.installation.lock import HOLDER, Holder, LockHeld, agent_lock

HOLD = """
import sys, time
from pathlib import Path
from commonshelf.installation.lock import agent_lock
with agent_lock(Path(sys.argv[1]), "run"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(home: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_second_agent_names_the_holder_and_changes_nothing(tmp_path: Path) -> None:
    child = _holder(tmp_path)
    try:
        started = time.monotonic()
        with (
            pytest.raises(LockHeld, match=rf"pid {child.pid} .*`commonshelf run`"),
            agent_lock(tmp_path, "update"),
        ):
            pytest.fail("the lock was taken twice")
        assert time.monotonic() - started < 1.0
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with agent_lock(tmp_path, "update"):  # SIGKILL released it
        pass


SLOW_TO_SAY = """
import fcntl, json, os, socket, sys, time
from pathlib import Path
home = Path(sys.argv[1])
fd = os.open(home / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(0.4)  # the window between taking the lock and writing who holds it
me = {"pid": os.getpid(), "host": socket.gethostname(), "command": "run", "since": "now"}
(home / "agent.lock.holder").write_text(json.dumps(me))
time.sleep(60)
"""


def test_a_refused_agent_names_the_winner_not_a_dead_earlier_holder(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = Holder(pid=int(dead.stdout), host=os.uname().nodename, command="old", since="then")
    (tmp_path / HOLDER).write_bytes(msgspec.json.encode(stale))  # left by a SIGKILLed agent
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_TO_SAY, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with (
            pytest.raises(LockHeld, match=rf"pid {child.pid} .*`commonshelf run`"),
            agent_lock(tmp_path, "update"),
        ):
            pytest.fail("the lock was taken twice")
    finally:
        child.kill()
        child.wait()


def test_releasing_the_lock_forgets_the_holder(tmp_path: Path) -> None:
    with agent_lock(tmp_path, "run"):
        assert (tmp_path / HOLDER).exists()
    assert not (tmp_path / HOLDER).exists()


def test_the_lock_is_reentrant_per_process_only_through_the_agent(tmp_path: Path) -> None:
    # a second open file description in the same process is refused too: the Agent counts
    # nesting itself (Agent.holding) rather than relying on flock semantics
    with agent_lock(tmp_path, "a"), pytest.raises(LockHeld), agent_lock(tmp_path, "b"):
        pass
    assert os.path.exists(tmp_path / "agent.lock")


def test_history_keeps_whole_events_and_skips_a_torn_line(tmp_path: Path) -> None:
    first = journal.Event(at="t1", app="a", action="update", outcome="done", sentence="One.")
    journal.record(tmp_path, first)
    with (tmp_path / journal.HISTORY).open("ab") as handle:
        handle.write(b'{"at": "t2", "app": "a", "act')  # a crash mid-line
    second = journal.Event(at="t3", app="b", action="backup", outcome="done", sentence="Two.")
    journal.record(tmp_path, second)
    assert journal.events(tmp_path) == [first, second]
    assert journal.last(tmp_path, "a") == first
    assert journal.last(tmp_path, "c") is None
