"""One way to run a command-line tool: capture its output, keep the last lines of its errors.

Every tool the shelf drives (docker CLI, debootstrap, git, trivy) fails the same way
for a person: one sentence with the command, the last lines it printed, and a fix.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from commonshelf.platform.errors import CommonshelfError


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
    cwd: Path | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run `argv`; its standard output, or `error` naming the command and its last words."""
    label = what or f"`{' '.join(argv[:3])}`"
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd,
            timeout=timeout,
            env=env,
        )
    except FileNotFoundError:
        raise error(f"{label}: {argv[0]} is not installed.", fix) from None
    except subprocess.TimeoutExpired:
        raise error(f"{label} did not finish within {timeout:.0f} s.", fix) from None
    if done.returncode != 0:
        said = tail(done.stderr) or tail(done.stdout) or f"exit code {done.returncode}"
        raise error(f"{label} failed: {said}", fix)
    return done.stdout
