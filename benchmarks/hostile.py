"""Refuse each file of tests/hostile/ in a fresh process; write benchmarks/hostile.md.

Each refusal runs in its own child interpreter, so the peak resident memory reported is
that file's alone: the child reads its own `VmHWM` from /proc/self/status (the high-water
mark of the memory it mapped after exec). `ru_maxrss` from wait4/RUSAGE_CHILDREN would not
do: Linux carries the parent's high-water mark into a vfork-ed child across exec, and
RUSAGE_CHILDREN is the maximum over all children so far. `seconds` is the load call
inside the child (median of `--runs`), not the interpreter's start. The first row is a
child that imports the loader and reads nothing: the floor under every other peak.

Goal per file: under 1 s and under 100 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOSTILE = Path("tests") / "hostile"
OUTPUT = Path("benchmarks") / "hostile.md"
GOAL_SECONDS, GOAL_MB = 1.0, 100.0

# file name ending -> (loader function, Limits name)
KINDS = {
    ".recipe.yml": ("load_yaml", "RECIPE"),
    ".compose.yml": ("load_yaml", "COMPOSE"),
    ".trivyignore.yaml": ("load_yaml", "WAIVERS"),
    ".catalog.json": ("load_json", "CATALOGUE"),
    ".evidence.json": ("load_json", "EVIDENCE"),
    ".state.json": ("load_json", "STATE"),
}

CHILD = """
import json, resource, sys, time
from pathlib import Path
from commonshelf.platform import loaders
function, limits, path = sys.argv[1:4]
result = {"seconds": 0.0, "error": "", "peak_kib": 0}
if function:
    load, bounds = getattr(loaders, function), getattr(loaders, limits)
    started = time.perf_counter()
    try:
        load(Path(path), bounds)
        result["error"] = "ACCEPTED"
    except loaders.InputError as exc:
        result["error"] = str(exc)
    result["seconds"] = time.perf_counter() - started
try:
    status = Path("/proc/self/status").read_text()
    result["peak_kib"] = int(status.split("VmHWM:", 1)[1].split()[0])
except (OSError, IndexError):
    result["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(result))
"""


def run_child(function: str, limits: str, path: str) -> tuple[float, float, str]:
    """(seconds, peak MB, error line) of one refusal in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, function, limits, path],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{path}: the child failed ({done.returncode}): {done.stderr.strip()}")
    result = json.loads(done.stdout)
    return result["seconds"], result["peak_kib"] / 1024, result["error"]


def at_limit_inputs(folder: Path) -> list[tuple[str, str, str, Path]]:
    """Valid files just inside each kind's limits, as many values as allowed: the most a
    loader accepts, to show what accepting (not refusing) costs at the edge."""
    inputs = []

    def write(name: str, function: str, limits: str, text: str) -> None:
        path = folder / name
        path.write_text(text)
        inputs.append((name, function, limits, path))

    scalars = ",".join(["1"] * 19_990)
    write("values.recipe.yml", "load_yaml", "RECIPE", f"[{scalars}]\n")
    scalars = ",".join(["1"] * 49_990)
    write("values.compose.yml", "load_yaml", "COMPOSE", f"[{scalars}]\n")
    pairs = ",".join(f'"k{i:07d}":"{"v" * 95}"' for i in range(149_990))
    write("values.catalog.json", "load_json", "CATALOGUE", "{" + pairs + "}")
    strings = ",".join(f'"{i:08d}"' for i in range(380_000))
    write("values.evidence.json", "load_json", "EVIDENCE", f"[{strings}]")
    strings = ",".join(f'"{i:040d}"' for i in range(19_990))
    write("values.state.json", "load_json", "STATE", f"[{strings}]")
    return inputs


def machine() -> str:
    pretty = platform.platform()
    os_release = Path("/etc/os-release")
    if os_release.exists():
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip('"')
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f", {round(total_kib / 1024 / 1024)} GiB"
    return f"{os.cpu_count()} cores{memory}, {pretty}, Python {platform.python_version()}"


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def measure(
    label: str, function: str, limits: str, path: str, runs: int
) -> tuple[str, str, float, float, str]:
    results = [run_child(function, limits, path) for _ in range(runs)]
    seconds = statistics.median(s for s, _, _ in results)
    peak = max(mb for _, mb, _ in results)
    outcome = results[0][2]
    print(f"{label:32} {seconds:.4f} s {peak:6.1f} MB  {outcome[:70]}", file=sys.stderr)
    return label, limits, seconds, peak, outcome


def table(rows: list[tuple[str, str, float, float, str]], last: str) -> list[str]:
    lines = [f"| file | kind | seconds | peak MB | {last} |", "| --- | --- | --- | --- | --- |"]
    for name, limits, seconds, peak, outcome in rows:
        shown = f"{seconds:.4f}" if limits else ""
        lines.append(f"| {name} | {limits} | {shown} | {peak:.1f} | {cell(outcome)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="children per file (default 3)")
    args = parser.parse_args()

    floor = measure("(import only)", "", "", "", args.runs)
    refused = [floor]
    for path in sorted((REPO / HOSTILE).iterdir()):
        kind = next((k for k in KINDS if path.name.endswith(k)), None)
        if kind is not None:
            function, limits = KINDS[kind]
            refused.append(
                measure(path.name, function, limits, str(HOSTILE / path.name), args.runs)
            )
    with tempfile.TemporaryDirectory() as tmp:
        accepted = [
            measure(name, function, limits, str(path), args.runs)
            for name, function, limits, path in at_limit_inputs(Path(tmp))
        ]
    over = [row[0] for row in refused[1:] if row[4] == "ACCEPTED"]
    over += [row[0] for row in accepted if row[4] != "ACCEPTED"]
    over += [row[0] for row in refused + accepted if row[2] >= GOAL_SECONDS or row[3] >= GOAL_MB]

    lines = [
        "# Refusing hostile input",
        "",
        "Command: `.venv/bin/python benchmarks/hostile.py` — refuses each file of",
        f"`{HOSTILE}/` with the loader of its kind in a fresh interpreter ({args.runs} runs",
        "each); `seconds` is the median of the load call, `peak MB` the child's peak",
        "resident set (VmHWM: interpreter and imports included; the first row is that floor).",
        f"Machine: {machine()}; measured {dt.date.today().isoformat()}.",
        "",
        f"Goal: under {GOAL_SECONDS:g} s and under {GOAL_MB:g} MB each. "
        + ("Every file is within it." if not over else f"Missed by: {', '.join(over)}."),
        "",
        *table(refused, "error line"),
        "",
        "## For scale: the largest valid files each kind accepts",
        "",
        "Generated by the same script into a temporary folder: as many values as the kind's",
        "`max_nodes` allows (and, for catalog.json, close to its 16 MiB `max_bytes`). This is",
        "what accepting costs at the edge; refusing costs the rows above.",
        "",
        *table(accepted, "outcome"),
    ]
    (REPO / OUTPUT).write_text("\n".join(lines) + "\n")
    print(f"wrote {OUTPUT}", file=sys.stderr)
    if over:
        raise SystemExit(f"missed the goal: {', '.join(over)}")


if __name__ == "__main__":
    main()
