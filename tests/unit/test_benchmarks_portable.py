"""Benchmark figures come with the command that produced them, written so that anyone can
rerun it from their own clone: no path of the machine they were measured on."""

from __future__ import annotations

import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
# a path into someone's checkout or home, as a clone source or anywhere else in a command
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|home|root|Users|srv|opt/[\w-]+/src)/[\w./-]+")


def test_benchmark_commands_name_no_path_of_the_machine() -> None:
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(BENCHMARKS.glob("*.md")) + sorted(BENCHMARKS.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if MACHINE_PATH.search(line)
    ]
    assert not found, "write paths relative to the repository:\n" + "\n".join(found)
