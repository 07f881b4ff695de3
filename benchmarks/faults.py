"""The fault suite's table: what each case injected, how long the installation took to
recover, how many bytes of user data it lost (the suite fails unless 0) and how many
requests the agent made to the catalogue during the fault.

Each case of `tests/faults/` records its figures in `build/faults/<case>.json`
(`tests/faults/report.py`); this prints them as markdown. Run the suite first:

    .venv/bin/pytest tests/faults -q && .venv/bin/python benchmarks/faults.py > benchmarks/faults.md

`recovery s` runs from the end of the fault (the server answering again, the process
started again, the disk freed…) until the next `commonshelf run` converged with the app
serving. `requests` are counted at the catalogue server: those of the `run` under the fault
(catalogue cases, clock), of the run right after a killed release, of both agents' runs,
and of every `run` from the fault until the one that converged (registry, engine, agent
killed, disk full; killed runs included, the tests' own `status` checks not). A poll with
nothing new costs 2 (the next root, answered 404, and timestamp.json); a new release costs
the first run to see it 4 more (snapshot, targets, the channel's catalog.json and the new
version's compose file). `outcome` is what the agent said, in its own words (the one-line
error, or `status`).
"""

from __future__ import annotations

import datetime as dt
import platform
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/ is not installed

from tests.faults.report import FOLDER, FaultCase, recorded  # noqa: E402

COMMAND = (
    ".venv/bin/pytest tests/faults -q && .venv/bin/python benchmarks/faults.py > "
    "benchmarks/faults.md"
)


_TEST_HOME = re.compile(r"/tmp/pytest-of-[^/\s]+/pytest-\d+/[^/\s]+/agent")


def _cell(text: object) -> str:
    """A table cell: one line, pipes escaped, a test's temporary home shown as HOME."""
    return _TEST_HOME.sub("HOME", str(text)).replace("|", "\\|").replace("\n", " ")


def table(cases: list[FaultCase]) -> list[str]:
    lines = [
        "| case | injected | recovery s | data lost (bytes) | requests | outcome |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in sorted(cases, key=lambda c: c.case):
        requests = "" if c.requests is None else str(c.requests)
        lines.append(
            f"| {_cell(c.case)} | {_cell(c.injected)} | {c.recovered_s:.2f} | "
            f"{c.data_lost_bytes} | {requests} | {_cell(c.outcome)} |"
        )
    return lines


def main() -> int:
    cases = recorded()
    if not cases:
        print(
            f"No fault case recorded in {FOLDER.relative_to(REPO)}/: run "
            "`.venv/bin/pytest tests/faults -q` first.",
            file=sys.stderr,
        )
        return 1
    lost = sum(c.data_lost_bytes for c in cases)
    out = [
        "# Fault suite",
        "",
        f"Command: `{COMMAND}`. Machine: {platform.machine()}, Python "
        f"{platform.python_version()}; generated {dt.date.today().isoformat()}.",
        "",
        f"{len(cases)} cases; data lost in all of them: {lost} bytes.",
        "",
        *table(cases),
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
