"""Node-RED: the editor and admin API behind a login, flows deployed through the admin API
serve HTTP, and flows and their encrypted credentials survive a restart."""

from __future__ import annotations

import base64
import json

from hooks import (  # type: ignore[import-not-found]
    add_flow,
    flows,
    headers,
    hello_flow,
    send,
    token,
    wait_for_endpoint,
)

from commonshelf.harness import RunningStack
from commonshelf.recipe import Recipe


def test_serves_the_editor(app: RunningStack) -> None:
    page = app.get("/")
    assert page.status_code == 200
    assert "<title>Node-RED</title>" in page.text


def test_health_path_answers_without_a_login(app: RunningStack, recipe: Recipe) -> None:
    health = app.get(recipe.main.health)
    assert health.status_code == 200
    assert health.json()["type"] == "credentials"  # adminAuth is on


def test_admin_api_needs_a_login(app: RunningStack) -> None:
    assert app.get("/flows").status_code == 401
    assert app.get("/settings").status_code == 401
    wrong = send(
        app,
        "POST",
        "/auth/token",
        data={
            "client_id": "node-red-admin",
            "grant_type": "password",
            "scope": "*",
            "username": "admin",
            "password": "not-the-password",
        },
    )
    assert wrong.status_code in (401, 403)


def test_runs_the_declared_upstream_version(app: RunningStack, recipe: Recipe) -> None:
    settings = send(app, "GET", "/settings", headers=headers(token(app)))
    assert settings.status_code == 200
    assert settings.json()["version"] == recipe.upstream_version


def test_runs_unprivileged(app: RunningStack) -> None:
    assert app.exec("id -u").strip() != "0"
    assert app.exec("stat -c %U /var/lib/node-red/userdir").strip() == "node-red"


def test_a_deployed_flow_serves_http(app: RunningStack) -> None:
    add_flow(app, token(app), hello_flow("hello", "/hello", "Hello"))
    page = wait_for_endpoint(app, "/hello?name=World")
    assert page.status_code == 200
    assert page.text == "Hello World!"


def test_flows_and_credentials_survive_a_restart(app: RunningStack) -> None:
    """An `http request` node keeps its basic-auth credentials (encrypted with the
    credential_secret) across a restart: it still sends them to an echoing endpoint."""
    tab = {"id": "kept-tab", "type": "tab", "label": "Commonshelf kept"}
    echo = [
        {
            "id": "echo-in",
            "type": "http in",
            "z": "kept-tab",
            "url": "/echo-auth",
            "method": "get",
            "wires": [["echo-template"]],
        },
        {
            "id": "echo-template",
            "type": "template",
            "z": "kept-tab",
            "field": "payload",
            "fieldType": "msg",
            "format": "text",
            "syntax": "mustache",
            "template": "{{{req.headers.authorization}}}",
            "output": "str",
            "wires": [["echo-out"]],
        },
        {
            "id": "echo-out",
            "type": "http response",
            "z": "kept-tab",
            "statusCode": "",
            "headers": {},
            "wires": [],
        },
    ]
    call = [
        {
            "id": "call-in",
            "type": "http in",
            "z": "kept-tab",
            "url": "/call-with-auth",
            "method": "get",
            "wires": [["call-request"]],
        },
        {
            "id": "call-request",
            "type": "http request",
            "z": "kept-tab",
            "method": "GET",
            "ret": "txt",
            "url": "http://127.0.0.1:1880/echo-auth",
            "authType": "basic",
            "credentials": {"user": "keeper", "password": "kept-across-restarts"},
            "wires": [["call-out"]],
        },
        {
            "id": "call-out",
            "type": "http response",
            "z": "kept-tab",
            "statusCode": "",
            "headers": {},
            "wires": [],
        },
    ]
    expected = "Basic " + base64.b64encode(b"keeper:kept-across-restarts").decode()
    add_flow(app, token(app), [tab, *echo, *call])
    page = wait_for_endpoint(app, "/call-with-auth")
    assert page.status_code == 200
    assert page.text == expected

    stored = app.exec("cat /var/lib/node-red/userdir/flows_cred.json")
    assert "kept-across-restarts" not in stored  # encrypted with credential_secret
    assert list(json.loads(stored)) == ["$"]

    app.restart()

    page = wait_for_endpoint(app, "/call-with-auth")
    assert page.status_code == 200
    assert page.text == expected  # decrypted again with the same secret
    assert "call-request" in {node.get("id") for node in flows(app, token(app))}


def test_settings_come_from_the_image_not_the_data_volume(app: RunningStack) -> None:
    assert "settings.js" not in app.exec("ls -A /var/lib/node-red/userdir")
    assert "credentialSecret" in app.exec("cat /opt/node-red/settings.js")
