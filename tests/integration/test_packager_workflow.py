"""A new packager's path on the real engine, through invoke: new → lint → build → test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from commonshelf.platform.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _invoke(shelf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COMMONSHELF_ROOT=str(shelf), TESTCONTAINERS_RYUK_DISABLED="true")
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_scaffolded_recipe_lints_builds_and_passes_its_tests(
    tmp_path: Path, settings: Settings
) -> None:
    shelf = tmp_path / "shelf"
    shutil.copytree(REPO / "shared", shelf / "shared")
    shutil.copytree(
        REPO / "recipes" / "custom-html",
        shelf / "recipes" / "custom-html",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (shelf / "pyproject.toml").write_text("[project]\nname = 'shelf-under-test'\n")
    for step in (
        ("new", "demo-app"),
        ("lint", "--app", "demo-app"),
        ("build", "demo-app"),
        ("test", "demo-app"),
    ):
        done = _invoke(shelf, *step)
        assert done.returncode == 0, (step, done.stdout[-2000:], done.stderr[-2000:])
    assert (shelf / "recipes" / "demo-app" / "recipe.yml").is_file()
    assert "3 passed" in done.stdout + done.stderr
    # not scanned yet: the release refuses it, saying why
    refused = _invoke(shelf, "release", "-a", "demo-app")
    assert refused.returncode == 1, refused.stdout[-2000:]
    assert "demo-app" in refused.stdout + refused.stderr
    for step in (("scan", "demo-app"), ("release", "-a", "demo-app")):
        done = _invoke(shelf, *step)
        assert done.returncode == 0, (step, done.stdout[-2000:], done.stderr[-2000:])
    assert "released demo-app 0.1.0" in done.stdout
