"""Seed hook for the standard matrix: real metric history, scraped by Prometheus itself
and read back through its own HTTP API after restarts, upgrades and restores.

`seed` picks a moment T half a minute in the past, once all three jobs have been
scraped, and notes what Prometheus' query API answers for T (the `up` series of every
job and the number of samples Prometheus had appended by then, a counter that restarts
from zero with the process). The note is kept in the data volume, as a user might keep
a note of "what the dashboards showed on Tuesday". `verify` asks the same questions
about the same moment: only the stored history can give the same answers.
"""

from __future__ import annotations

import json
import time
from typing import Any

from commonshelf.harness import RunningStack

NOTE = "/var/lib/prometheus/commonshelf-seed.json"
JOBS = {"prometheus", "alertmanager", "node"}
SAMPLES = "sum(prometheus_tsdb_head_samples_appended_total)"


def query(app: RunningStack, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    """An instant query through Prometheus' HTTP API; the result vector."""
    params: dict[str, Any] = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    answer = app.get("/api/v1/query", params=params)
    assert answer.status_code == 200, f"query {expr!r}: HTTP {answer.status_code} {answer.text}"
    body = answer.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def up_by_job(app: RunningStack, at: float | None = None) -> dict[str, str]:
    return {s["metric"]["job"]: s["value"][1] for s in query(app, "up", at)}


def wait_for(what: str, check: Any, timeout: float = 240.0, every: float = 3.0) -> Any:
    """Poll `check()` until it returns something truthy (its value) or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (AssertionError, OSError, ValueError) as exc:  # requests' errors are OSErrors
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"{what}: still not so after {timeout:.0f}s (last: {last!r})")


def seed(app: RunningStack) -> None:
    def history() -> dict[str, Any] | None:
        at = float(int(time.time()) - 30)
        up = up_by_job(app, at)
        samples = query(app, SAMPLES, at)
        if set(up) != JOBS or set(up.values()) != {"1"} or not samples:
            return None
        return {"time": at, "up": up, "samples": samples[0]["value"][1]}

    note = wait_for("all three jobs up half a minute ago", history)
    app.exec(f"printf '%s' '{json.dumps(note)}' > {NOTE}")


def verify(app: RunningStack) -> None:
    note = json.loads(app.exec(f"cat {NOTE}"))
    at = float(note["time"])

    # Prometheus may still be replaying its write-ahead log right after a start.
    def answers() -> tuple[dict[str, str], str] | None:
        samples = query(app, SAMPLES, at)
        return (up_by_job(app, at), samples[0]["value"][1]) if samples else None

    up, samples = wait_for(f"history at {at:.0f} queryable", answers, timeout=120)
    assert up == note["up"], f"`up` at {at:.0f}: {up}, seeded {note['up']}"
    assert samples == note["samples"], f"{SAMPLES} at {at:.0f}: {samples}, seeded {note['samples']}"
