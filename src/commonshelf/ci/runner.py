"""Run a recipe's own tests (pytest, in a child process) against images that were built."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from commonshelf.ci.plugin import ENV_IMAGES, ENV_RECIPE
from commonshelf.recipes.model import Recipe


@dataclass(frozen=True)
class TestRun:
    """What running a recipe's tests proved, for the evidence record."""

    passed: int
    failed: int
    errors: int
    skipped: int
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.errors == 0 and self.passed > 0

    @property
    def summary(self) -> str:
        return (
            f"{self.passed} passed, {self.failed} failed, {self.errors} errors, "
            f"{self.skipped} skipped in {self.seconds:.1f}s"
        )


def run_recipe_tests(
    recipe: Recipe, images: Mapping[str, str], work_dir: Path, capture: bool = True
) -> TestRun:
    """Run `recipes/<app>/tests` with pytest in a child process against the given images."""
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    if not recipe.tests_dir.is_dir():
        return TestRun(0, 0, 1, 0, 0.0, f"{recipe.tests_dir} is missing")
    work_dir.mkdir(parents=True, exist_ok=True)
    report = work_dir.resolve() / f"{recipe.name}-junit.xml"
    report.unlink(missing_ok=True)
    env = dict(os.environ, **{ENV_RECIPE: str(recipe.path), ENV_IMAGES: json.dumps(dict(images))})
    argv = [
        sys.executable,
        "-m",
        "pytest",
        str(recipe.tests_dir),
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        f"--rootdir={recipe.path}",
        "-c",
        os.devnull,
        "-q",
    ]
    started = time.monotonic()
    done = subprocess.run(
        argv, env=env, cwd=recipe.path, capture_output=capture, text=True, check=False
    )
    seconds = time.monotonic() - started
    output = (done.stdout or "") + (done.stderr or "")
    try:
        root = ET.parse(report).getroot()
        found = root if root.tag == "testsuite" else root.find("testsuite")
        suite = root if found is None else found
        tests = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0))
        errors = int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
    except (OSError, ET.ParseError):
        return TestRun(0, 0, 1, 0, seconds, output or f"pytest exited {done.returncode}")
    return TestRun(tests - failed - errors - skipped, failed, errors, skipped, seconds, output)
