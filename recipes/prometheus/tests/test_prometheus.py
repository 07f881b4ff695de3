"""Prometheus scrapes itself, Alertmanager and the node exporter, fires its watchdog
alert into Alertmanager, applies the recipe's settings and keeps its history; all
checked through Prometheus' and Alertmanager's own HTTP APIs."""

from __future__ import annotations

import json
from typing import Any

import hooks

from commonshelf.harness import RunningStack
from commonshelf.recipe import Recipe

AMTOOL = "amtool --alertmanager.url=http://127.0.0.1:9093 -o json"


def api(app: RunningStack, path: str, **params: Any) -> Any:
    answer = app.get(path, params=params)
    assert answer.status_code == 200, f"GET {path}: HTTP {answer.status_code} {answer.text}"
    body = answer.json()
    assert body["status"] == "success", body
    return body["data"]


def test_health_path_answers(app: RunningStack, recipe: Recipe) -> None:
    health = app.get(recipe.main.health)
    assert health.status_code == 200
    assert "Healthy" in health.text


def test_runs_the_declared_upstream_version(app: RunningStack, recipe: Recipe) -> None:
    # Debian's build reports its source repack suffix: 2.42.0+ds.
    version = api(app, "/api/v1/status/buildinfo")["version"]
    assert version.split("+")[0] == recipe.upstream_version, version


def test_every_target_is_scraped(app: RunningStack) -> None:
    def targets() -> dict[str, str] | None:
        active = api(app, "/api/v1/targets", state="active")["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in active}
        return health if set(health.values()) == {"up"} and len(health) == 3 else None

    health = hooks.wait_for("all targets up", targets)
    assert health == {"prometheus": "up", "alertmanager": "up", "node": "up"}


def test_up_is_one_for_all_three_jobs(app: RunningStack) -> None:
    def all_up() -> dict[str, str] | None:
        up = hooks.up_by_job(app)
        return up if len(up) == 3 and set(up.values()) == {"1"} else None

    up = hooks.wait_for("`up` of every job at 1", all_up)
    assert up == {"prometheus": "1", "alertmanager": "1", "node": "1"}
    for series in hooks.query(app, "up"):
        assert series["metric"]["instance"] in {
            "localhost:9090",
            "alertmanager:9093",
            "node-exporter:9100",
        }


def test_node_exporter_series_are_stored(app: RunningStack) -> None:
    memory = hooks.wait_for(
        "node_memory_MemTotal_bytes",
        lambda: hooks.query(app, 'node_memory_MemTotal_bytes{job="node"}'),
    )
    assert float(memory[0]["value"][1]) > 16 * 1024 * 1024
    cpus = hooks.query(app, 'count(node_cpu_seconds_total{job="node",mode="idle"})')
    assert int(cpus[0]["value"][1]) >= 1
    # Without host mounts the exporter reports its container's view: its own hostname.
    hostname = app.exec("cat /proc/sys/kernel/hostname", service="node-exporter").strip()
    uname = hooks.query(app, 'node_uname_info{job="node"}')
    assert [u["metric"]["nodename"] for u in uname] == [hostname]


def test_watchdog_alert_fires_and_reaches_alertmanager(app: RunningStack) -> None:
    def firing() -> list[dict[str, Any]]:
        alerts = api(app, "/api/v1/alerts")["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == "CommonshelfWatchdog" and a["state"] == "firing"
        ]

    assert hooks.wait_for("watchdog firing in Prometheus", firing)
    managers = api(app, "/api/v1/alertmanagers")["activeAlertmanagers"]
    assert [m["url"] for m in managers] == ["http://alertmanager:9093/api/v2/alerts"]

    def received() -> list[dict[str, Any]]:
        alerts = json.loads(
            app.exec(f"{AMTOOL} alert query alertname=CommonshelfWatchdog", service="alertmanager")
        )
        return [a for a in alerts if a["status"]["state"] == "active"]

    # Prometheus resends firing alerts every minute; the first one may precede discovery.
    alerts = hooks.wait_for("watchdog received by Alertmanager", received, timeout=180)
    assert alerts[0]["labels"] == {"alertname": "CommonshelfWatchdog", "severity": "none"}
    assert [r["name"] for r in alerts[0]["receivers"]] == ["null"]
    # Prometheus sees the same through Alertmanager's metrics it scrapes.
    assert hooks.wait_for(
        "alertmanager_alerts active",
        lambda: hooks.query(app, 'alertmanager_alerts{job="alertmanager",state="active"} >= 1'),
        timeout=120,
    )


def test_settings_reach_prometheus(app: RunningStack, recipe: Recipe) -> None:
    # The harness runs the settings' defaults.
    interval = recipe.manifest["env"]["SCRAPE_INTERVAL"]["default"]
    retention = recipe.manifest["env"]["RETENTION"]["default"]
    config = api(app, "/api/v1/status/config")["yaml"]
    assert f"scrape_interval: {interval}" in config
    assert f"evaluation_interval: {interval}" in config
    flags = api(app, "/api/v1/status/flags")
    assert flags["storage.tsdb.retention.time"] == retention
    assert flags["storage.tsdb.path"] == "/var/lib/prometheus/metrics2"
    assert flags["web.enable-admin-api"] == "false"
    assert flags["web.enable-lifecycle"] == "false"


def test_every_service_runs_unprivileged(app: RunningStack) -> None:
    for service in ("app", "alertmanager", "node-exporter"):
        assert app.exec("id -u", service=service).strip() != "0", service


def test_operator_rules_from_the_data_volume_are_loaded(app: RunningStack) -> None:
    rule = (
        "groups:\n"
        "  - name: mine\n"
        "    rules:\n"
        "      - record: job:up:sum\n"
        "        expr: sum by (job) (up)\n"
    )
    app.exec(f"printf '%s' '{rule}' > /var/lib/prometheus/rules/mine.yml && kill -HUP 1")

    def groups() -> list[str]:
        found = [g["name"] for g in api(app, "/api/v1/rules")["groups"]]
        return found if "mine" in found else []

    assert hooks.wait_for("rule group `mine` loaded", groups, timeout=60) == ["commonshelf", "mine"]
    assert hooks.wait_for("job:up:sum recorded", lambda: hooks.query(app, 'job:up:sum{job="node"}'))
    app.exec("rm /var/lib/prometheus/rules/mine.yml && kill -HUP 1")


def test_history_survives_a_restart(app: RunningStack) -> None:
    hooks.seed(app)
    hooks.verify(app)
    app.restart()
    hooks.verify(app)
    # The counter restarted with the process: the seeded answer came from stored history.
    now = hooks.query(app, hooks.SAMPLES)
    note = json.loads(app.exec(f"cat {hooks.NOTE}"))
    assert now and float(now[0]["value"][1]) != float(note["samples"])


def test_alertmanager_takes_the_operators_configuration(app: RunningStack) -> None:
    config = "route:\n  receiver: operator\nreceivers:\n  - name: operator\n"
    app.exec(
        f"printf '%s' '{config}' > /var/lib/alertmanager/alertmanager.yml", service="alertmanager"
    )
    try:
        app.restart("alertmanager")
        status = json.loads(app.exec(f"{AMTOOL} config show", service="alertmanager"))
        assert "receiver: operator" in status["config"]["original"]
        assert status["cluster"]["status"] == "disabled"  # a single instance, no gossip
    finally:
        app.exec("rm -f /var/lib/alertmanager/alertmanager.yml", service="alertmanager")
        app.restart("alertmanager")
