"""`invoke` acts on the clone it is run from: with one virtual environment shared by two
clones, the tasks of one clone lint that clone, not the checkout the package came from; an
explicit COMMONSHELF_ROOT still wins."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _lint(clone: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "COMMONSHELF_ROOT"} | env
    return subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(clone), "lint", "--json"],
        cwd=clone,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_tasks_lint_the_clone_they_sit_in(tmp_path: Path) -> None:
    clone = tmp_path / "other-clone"
    shutil.copytree(REPO / "shared", clone / "shared")
    shutil.copytree(REPO / "recipes" / "custom-html", clone / "recipes" / "custom-html")
    shutil.copy(REPO / "tasks.py", clone / "tasks.py")
    (clone / "recipes" / "custom-html" / "README.md").unlink()  # a lint error only here

    mine = _lint(clone)
    assert mine.returncode == 1, mine.stdout[-2000:] + mine.stderr[-2000:]
    assert "README.md" in mine.stdout

    theirs = _lint(clone, COMMONSHELF_ROOT=str(REPO))  # an explicit root still wins
    assert theirs.returncode == 0, theirs.stdout[-2000:]  # the bundled shelf is clean
    assert "other-clone" not in theirs.stdout
