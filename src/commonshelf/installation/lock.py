"""One agent acts on an installation at a time.

Every command that changes something (install, update, run, backup, restore, import…)
holds an exclusive `flock` on `HOME/agent.lock` for its whole run. The kernel drops the
lock when its holder exits, even on SIGKILL, so a crashed agent never leaves a stale lock;
who holds it is written beside it so the second agent can say so and exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.fsutil import write_bytes_atomic

LOCK = "agent.lock"
HOLDER = "agent.lock.holder"
HOLDER_WAIT_S = 2.0  # how long a refused agent waits for the winner to say who it is


class LockHeld(CommonshelfError):
    """Another agent is acting on this installation."""


class Holder(msgspec.Struct, frozen=True, kw_only=True):
    pid: int
    host: str
    command: str
    since: str


def holder(home: Path) -> Holder | None:
    """Who last took the lock (the current holder while it is held)."""
    try:
        return msgspec.json.decode((home / HOLDER).read_bytes()[:4096], type=Holder)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def _alive(who: Holder) -> bool:
    """Whether `who` may still hold the lock (a process on another host is taken on trust)."""
    if who.host != socket.gethostname():
        return True
    try:
        os.kill(who.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def current_holder(home: Path, wait_s: float = HOLDER_WAIT_S) -> Holder | None:
    """The live holder of a lock we were just refused.

    The winner writes its name just after taking the lock, and a holder killed with SIGKILL
    leaves its file behind, so the file read at once may be missing or name a dead process:
    wait briefly for the winner's own record.
    """
    deadline = time.monotonic() + wait_s
    while True:
        who = holder(home)
        if (who is not None and _alive(who)) or time.monotonic() >= deadline:
            return who if who is not None and _alive(who) else None
        time.sleep(0.02)


@contextlib.contextmanager
def agent_lock(home: Path, command: str) -> Iterator[None]:
    """Hold the installation's lock for `command`, or raise LockHeld naming the holder."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = current_holder(home)
            who = (
                f"pid {held.pid} on {held.host}, `commonshelf {held.command}` since {held.since}"
                if held
                else "another process"
            )
            raise LockHeld(
                f"Another commonshelf agent is acting on {home} ({who}); this one changed "
                "nothing and exits.",
                "wait for it to finish; the lock is released as soon as its holder exits.",
            ) from None
        me = Holder(pid=os.getpid(), host=socket.gethostname(), command=command, since=now_iso())
        write_bytes_atomic(home / HOLDER, msgspec.json.encode(me), 0o644)
        try:
            yield
        finally:  # still holding the lock: nobody else can be writing the file
            (home / HOLDER).unlink(missing_ok=True)
    finally:
        os.close(fd)  # releases the flock
