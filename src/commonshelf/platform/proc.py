"""One way to run a command-line tool: capture its output, keep the last lines of its errors.

Every tool the shelf drives (docker CLI, debootstrap, apt-get, git, trivy) fails the same
way for a person: one sentence with the command, the last lines it printed, and a fix.
A tool never reads the terminal: its standard input is /dev/null unless `stdin` is given.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from commonshelf.platform.errors import CommonshelfError

Stdin = int | IO[Any] | None
"""What a command reads: a file object or descriptor (e.g. another process's stdout)."""


def tail(text: str, lines: int = 3) -> str:
    """The last `lines` non-empty lines of `text`, joined on one line."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def run(
    argv: Sequence[str],
    *,
    fix: str,
    error: type[CommonshelfError] = CommonshelfError,
    what: str = "",
    failed: Callable[[str], str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    stdin: Stdin = None,
) -> str:
    """Run `argv`; its standard output (UTF-8, undecodable bytes replaced), or `error`.

    The error names the command (`what`, default its first three words) and its last
    words: "{what} failed: {last lines}". A caller with its own wording passes `failed`,
    which is given the last lines and returns the whole sentence.
    """
    out = run_bytes(
        argv,
        fix=fix,
        error=error,
        what=what,
        failed=failed,
        cwd=cwd,
        timeout=timeout,
        env=env,
        stdin=stdin,
    )
    return out.decode("utf-8", errors="replace")


def run_bytes(
    argv: Sequence[str],
    *,
    fix: str,
    error: type[CommonshelfError] = CommonshelfError,
    what: str = "",
    failed: Callable[[str], str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    stdin: Stdin = None,
) -> bytes:
    """`run`, for a command whose output is bytes (an archive, a file to hash)."""
    label = what or f"`{' '.join(argv[:3])}`"
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            capture_output=True,
            check=False,
            cwd=cwd,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise error(f"{label} did not finish within {timeout:g} s.", fix) from None
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and exc.filename in (None, argv[0]):
            raise error(f"{label}: {argv[0]} is not installed.", fix) from None
        # not executable, or the working directory is missing
        raise error(f"{label}: {argv[0]} cannot be run ({exc.strerror or exc}).", fix) from None
    if done.returncode != 0:
        said = (
            tail(done.stderr.decode("utf-8", errors="replace"))
            or tail(done.stdout.decode("utf-8", errors="replace"))
            or f"exit code {done.returncode}"
        )
        raise error(failed(said) if failed is not None else f"{label} failed: {said}", fix)
    return done.stdout
