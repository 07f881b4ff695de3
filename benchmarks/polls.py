"""What an installation's poll costs with 10, 100 and 1,000 apps in the catalogue.

Each catalogue is synthetic but realistic: one real app entry of the committed
`catalog.json` (default: mediawiki, one version with a database, backup hooks, secrets
and settings), copied under other names (`<app>-0001`...; its compose path and image
names follow), beside the real platform section. Each is published with real signatures
(`commonshelf.catalogue.signing.Publisher`, fresh ed25519 keys) into a temporary folder
and served on loopback by `commonshelf.catalogue.server`, the handler the demo's
catalogue server runs, which counts every response it sends.

Three polls, each a new `Subscription` as a new command would make, `refresh()` then
`fetch("catalog.json")`:

- first: `Subscription.create` on an empty home (pin the root), then the poll;
- nothing new: the same home again, the repository unchanged;
- one app changed: a new catalogue is published before the poll (one version's
  `released` date moved), so the whole `catalog.json` comes again.

`client CPU` is `time.thread_time()` around pin + refresh + fetch on the calling thread:
the HTTP client, TUF verification and hashing, not the server thread in the same process
(`process_time` would add it). `parse` is `Catalog.from_bytes` on the catalogue, which the
agent does after every poll. Medians of `--runs` repetitions.

    .venv/bin/python benchmarks/polls.py > benchmarks/polls.md
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.server import Response, Traffic, serving
from commonshelf.catalogue.signing import Publisher, load_or_create_keys
from commonshelf.installation.subscription import Subscription
from commonshelf.platform.errors import CommonshelfError

REPO = Path(__file__).resolve().parents[1]

COMMAND = ".venv/bin/python benchmarks/polls.py > benchmarks/polls.md"
TARGET = "catalog.json"
SIZES = (10, 100, 1000)


def synthetic_catalogue(source: dict[str, Any], template: str, apps: int) -> dict[str, Any]:
    """`apps` copies of the real entry `template`, each under a name of its own."""
    entry = json.dumps(source["apps"][template])
    named = {}
    for number in range(1, apps + 1):
        name = f"{template}-{number:04d}"
        named[name] = json.loads(entry.replace(f"/{template}", f"/{name}"))
    catalogue = {key: value for key, value in source.items() if key != "apps"}
    return {**catalogue, "apps": named}


def encoded(catalogue: dict[str, Any]) -> bytes:
    """The release job's canonical form: sorted keys, two-space indent, final newline."""
    return json.dumps(catalogue, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def one_app_changed(catalogue: dict[str, Any], round_: int) -> dict[str, Any]:
    changed = copy.deepcopy(catalogue)
    first = changed["apps"][min(changed["apps"])]
    version = max(first["versions"])
    first["versions"][version]["released"] = f"2030-01-01T00:00:{round_ % 60:02d}Z"
    return changed


@dataclass(frozen=True)
class Sample:
    requests: int
    body: int
    total: int
    cpu_ms: float
    wall_ms: float


def measured(traffic: Traffic, poll: Callable[[], bytes]) -> tuple[Sample, bytes]:
    traffic.take()
    wall, cpu = time.perf_counter(), time.thread_time()
    data = poll()
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    sent: list[Response] = traffic.take()
    body = sum(r.body_bytes for r in sent)
    total = body + sum(r.header_bytes for r in sent)
    return Sample(len(sent), body, total, cpu * 1000, wall * 1000), data


def median(samples: list[Sample]) -> Sample:
    return Sample(
        round(statistics.median(s.requests for s in samples)),
        round(statistics.median(s.body for s in samples)),
        round(statistics.median(s.total for s in samples)),
        statistics.median(s.cpu_ms for s in samples),
        statistics.median(s.wall_ms for s in samples),
    )


def parse_ms(data: bytes, runs: int) -> str:
    times = []
    for _ in range(runs):
        started = time.thread_time()
        try:
            Catalog.from_bytes(data, TARGET)
        except CommonshelfError as refused:
            return f"refused: {refused.what}"
        times.append((time.thread_time() - started) * 1000)
    return f"{statistics.median(times):.1f}"


def first_poll(home: Path, url: str, root: bytes) -> bytes:
    """`init` without its check, then a command's poll."""
    subscription = Subscription.create(home, url, root)
    subscription.refresh()
    return subscription.fetch(TARGET)


def next_poll(home: Path) -> bytes:
    """A later command: a new object on the same home, one refresh, the catalogue."""
    subscription = Subscription.open(home)
    subscription.refresh()
    return subscription.fetch(TARGET)


def bench(catalogue: dict[str, Any], runs: int, work: Path) -> tuple[int, dict[str, Sample], str]:
    """(catalogue bytes, poll -> median sample, parse cell) for one catalogue."""
    public = work / "public"
    keys = load_or_create_keys(work / "keys", env={})[0]
    data = encoded(catalogue)
    Publisher(public, keys).publish({TARGET: data})
    root = (public / "metadata" / "1.root.json").read_bytes()
    traffic = Traffic()
    polls: dict[str, list[Sample]] = {"first": [], "nothing new": [], "one app changed": []}
    with serving(public, traffic) as url:
        for attempt in range(runs):
            home = work / f"home-{attempt}"
            sample, got = measured(traffic, partial(first_poll, home, url, root))
            polls["first"].append(sample)
            sample, again = measured(traffic, partial(next_poll, home))
            polls["nothing new"].append(sample)
            if got != data or again != data:
                raise SystemExit("a poll returned other bytes than were published")
        for attempt in range(runs):
            changed = encoded(one_app_changed(catalogue, attempt))
            Publisher(public, keys).publish({TARGET: changed})
            sample, got = measured(traffic, partial(next_poll, work / "home-0"))
            polls["one app changed"].append(sample)
            if got != changed:
                raise SystemExit("a poll did not see the new catalogue")
    medians = {poll: median(samples) for poll, samples in polls.items()}
    return len(data), medians, parse_ms(data, runs)


def machine() -> str:
    pretty = platform.platform()
    os_release = Path("/etc/os-release")
    if os_release.exists():
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip('"')
    return f"{os.cpu_count()} cores, {pretty}, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions per poll (median)")
    parser.add_argument("--app", default="mediawiki", help="the real entry to copy")
    args = parser.parse_args()
    source = json.loads((REPO / "catalog.json").read_text())
    if args.app not in source["apps"]:
        raise SystemExit(
            f"catalog.json has no app {args.app}; pick one of {sorted(source['apps'])}"
        )
    versions = len(source["apps"][args.app]["versions"])
    rows = []
    for apps in SIZES:
        catalogue = synthetic_catalogue(source, args.app, apps)
        with tempfile.TemporaryDirectory(prefix="polls-") as work:
            size, samples, parse = bench(catalogue, args.runs, Path(work))
        print(f"{apps} apps: {size} bytes, {samples}", file=sys.stderr)
        for poll, s in samples.items():
            rows.append(
                f"| {apps} | {size:,} | {poll} | {s.requests} | {s.body:,} | {s.total:,} "
                f"| {s.cpu_ms:.1f} | {s.wall_ms:.1f} | {parse if poll == 'first' else ''} |"
            )
    nothing_new = [r for r in rows if "| nothing new |" in r]
    print("# What a poll costs\n")
    print(f"Command: `{COMMAND}` (medians of {args.runs} runs).")
    print(f"Machine: {machine()}; measured {dt.date.today().isoformat()}.\n")
    print(
        f"Each catalogue holds N copies of `{args.app}` from the committed `catalog.json` "
        f"({versions} version{'s' if versions != 1 else ''} each, under other names), "
        "published with real signatures and served on loopback by "
        "`commonshelf.catalogue.server`, which counts what it sends. `body` counts response "
        "bodies; `with headers` adds the status lines and headers. `client CPU` is the "
        "polling thread's CPU time (`time.thread_time`) for pin (first poll only) + "
        '`refresh()` + `fetch("catalog.json")`; `parse` is `Catalog.from_bytes` on the '
        "catalogue, which the agent does after each poll.\n"
    )
    print("Goal: a poll with nothing new makes at most two requests, under 1 KiB in total.\n")
    print(
        "| apps | catalog.json bytes | poll | requests | body bytes | with headers "
        "| client CPU ms | wall ms | parse CPU ms |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print(
        f"\n{len(nothing_new)} rows of 'nothing new': the next root version (404) and "
        "`timestamp.json`, the same bytes whatever the catalogue's size; what grows with it is "
        "the client's CPU, which reads and hashes the held `catalog.json` to check it against "
        "its signed hash before reusing it. Anything that changes the catalogue brings the "
        "whole `catalog.json` again (it is one signed target)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
