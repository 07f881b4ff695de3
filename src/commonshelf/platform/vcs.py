"""What commit and source a build or release comes from, for labels and the catalogue."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def revision(root: Path) -> str:
    """The checked-out commit, with '-dirty' when tracked files differ from it."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return "unknown"
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    return f"{commit}-dirty" if dirty else commit


def source_url(root: Path) -> str:
    """Where the recipe source lives: the origin remote, else the local checkout."""
    return _git(root, "remote", "get-url", "origin") or root.resolve().as_uri()
