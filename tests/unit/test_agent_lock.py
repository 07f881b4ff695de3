"""One agent acts at a time; the second says who holds the lock. A crashed holder (even
SIGKILL) leaves no stale lock. History lines cut short by a crash are skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from commonshelf.installation import journal
from commonshelf.installation.lock import LockHeld, agent_lock

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
