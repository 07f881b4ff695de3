"""What commit and source a build or release comes from, for labels and the catalogue."""

from __future__ import annotations

from pathlib import Path

from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.proc import run


def _git(root: Path, *args: str) -> str | None:
    """git's output in `root`, or None when git is missing, fails, or says nothing."""
    try:
        out = run(["git", "-C", str(root), *args], fix="", timeout=10)
    except CommonshelfError:
        return None
    return out.strip() or None


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
