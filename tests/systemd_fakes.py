"""What the timer tests share: a systemctl that records its calls, and systemd's own check of
rendered units (systemd is not PID 1 in a container, so nothing is really enabled)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not here"
)


def fake_systemctl(tmp_path: Path, code: int = 0) -> tuple[Path, Path]:
    """A systemctl that appends its arguments, one call per line, to a file (and fails
    `enable` with exit code `code`, if given)."""
    calls = tmp_path / "calls.txt"
    script = tmp_path / "systemctl"
    fail = f'[ "$1" = enable ] && {{ echo "Failed to enable unit: $3" >&2; exit {code}; }}\n'
    script.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n' + (fail if code else "") + "exit 0\n")
    script.chmod(0o755)
    return script, calls


def assert_systemd_accepts(units: Mapping[str, str], folder: Path) -> None:
    """`systemd-analyze verify` passes the units without a word (it only warns, exit 0,
    about unknown keys, so its output must be empty too)."""
    folder.mkdir()
    for name, text in units.items():
        (folder / name).write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", *(str(folder / name) for name in units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stderr.strip() == "" and done.stdout.strip() == "", (
        done.stdout + done.stderr
    )
