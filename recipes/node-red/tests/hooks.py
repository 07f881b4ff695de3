"""Seed hook for the standard matrix: a flow deployed through Node-RED's admin API (the
password grant the editor uses, then POST /flows), whose HTTP endpoint is then called through
the app's own HTTP interface. The helpers are shared with test_node_red.py."""

from __future__ import annotations

import time
from typing import Any

import requests

from commonshelf.harness import RunningStack


def send(app: RunningStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    """Any HTTP request to the app, with the Host header `app.get` uses.

    Behind the matrix's proxy the app is routed by its hostname, but `app.url()` alone
    carries none; `app.get` does, so the header is taken from one of its requests. A proxy
    that cannot reach a task just replaced answers 502-504 for a moment: tried again.
    """
    host = app.get("/auth/login").request.headers.get("Host")
    headers = {**({"Host": str(host)} if host else {}), **kwargs.pop("headers", {})}
    kwargs.setdefault("timeout", 60)
    deadline = time.monotonic() + 60
    while True:
        answer = requests.request(method, app.url(path), headers=headers, **kwargs)
        if answer.status_code not in (502, 503, 504) or time.monotonic() > deadline:
            return answer
        time.sleep(1)


def admin_password(app: RunningStack) -> str:
    return app.exec("cat /run/secrets/admin_password").strip()


def token(app: RunningStack, password: str | None = None) -> str:
    """An access token from POST /auth/token (the password grant the editor uses)."""
    answer = send(
        app,
        "POST",
        "/auth/token",
        data={
            "client_id": "node-red-admin",
            "grant_type": "password",
            "scope": "*",
            "username": "admin",
            "password": password if password is not None else admin_password(app),
        },
    )
    assert answer.status_code == 200, f"POST /auth/token answered {answer.status_code}"
    return str(answer.json()["access_token"])


def headers(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def hello_flow(tab: str, path: str, greeting: str) -> list[dict[str, Any]]:
    """A tab with `http in` (GET path) -> `template` -> `http response`."""
    return [
        {"id": f"{tab}-tab", "type": "tab", "label": f"Commonshelf {tab}"},
        {
            "id": f"{tab}-in",
            "type": "http in",
            "z": f"{tab}-tab",
            "url": path,
            "method": "get",
            "wires": [[f"{tab}-template"]],
        },
        {
            "id": f"{tab}-template",
            "type": "template",
            "z": f"{tab}-tab",
            "field": "payload",
            "fieldType": "msg",
            "format": "text",
            "syntax": "mustache",
            "template": greeting + " {{req.query.name}}!",
            "output": "str",
            "wires": [[f"{tab}-out"]],
        },
        {
            "id": f"{tab}-out",
            "type": "http response",
            "z": f"{tab}-tab",
            "statusCode": "",
            "headers": {},
            "wires": [],
        },
    ]


def flows(app: RunningStack, access_token: str) -> list[dict[str, Any]]:
    answer = send(app, "GET", "/flows", headers=headers(access_token))
    assert answer.status_code == 200, f"GET /flows answered {answer.status_code}"
    return list(answer.json())


def add_flow(app: RunningStack, access_token: str, nodes: list[dict[str, Any]]) -> None:
    """Deploy the current flows plus `nodes` (replacing nodes with the same ids)."""
    ids = {node["id"] for node in nodes}
    kept = [node for node in flows(app, access_token) if node.get("id") not in ids]
    answer = send(
        app,
        "POST",
        "/flows",
        json=kept + nodes,
        headers={**headers(access_token), "Node-RED-Deployment-Type": "full"},
    )
    assert answer.status_code in (200, 204), f"POST /flows answered {answer.status_code}"


def wait_for_endpoint(app: RunningStack, path: str, seconds: float = 60) -> requests.Response:
    """GET a flow's endpoint, giving the flows time to start after a (re)start or deploy
    (404 until they run; 502-504 while a proxy cannot reach a task just replaced)."""
    deadline = time.monotonic() + seconds
    page = app.get(path)
    while page.status_code in (404, 502, 503, 504) and time.monotonic() < deadline:
        time.sleep(1)
        page = app.get(path)
    return page


SEEDED_PATH = "/commonshelf-seeded"
SEEDED_GREETING = "Seeded by the Commonshelf matrix for"


def seed(app: RunningStack) -> None:
    add_flow(app, token(app), hello_flow("seeded", SEEDED_PATH, SEEDED_GREETING))


def verify(app: RunningStack) -> None:
    ids = {node.get("id") for node in flows(app, token(app))}
    assert {"seeded-tab", "seeded-in", "seeded-template", "seeded-out"} <= ids, ids
    page = wait_for_endpoint(app, f"{SEEDED_PATH}?name=Ada")
    assert page.status_code == 200, f"GET {SEEDED_PATH} answered {page.status_code}"
    assert page.text == f"{SEEDED_GREETING} Ada!"
