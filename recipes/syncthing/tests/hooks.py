"""Seed hook for the standard matrix, and REST helpers shared with the tests: a folder added
through Syncthing's REST API (X-API-Key from the generated secret), a file written into it,
a scan requested through the API, and the file counted in the folder's database status."""

from __future__ import annotations

import time
from typing import Any

import requests

from commonshelf.harness import RunningStack

HEALTH = "/rest/noauth/health"
FOLDERS = "/var/lib/syncthing/folders"


def send(app: RunningStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    """Any HTTP request to the app, with the Host header `app.get` uses.

    Behind the matrix's proxy the app is routed by its hostname, but `app.url()` alone
    carries none; `app.get` does, so the header is taken from one of its requests. A proxy
    that cannot reach a task just replaced answers 502-504 for a moment: tried again.
    """
    host = app.get(HEALTH).request.headers.get("Host")
    headers = {**({"Host": str(host)} if host else {}), **kwargs.pop("headers", {})}
    kwargs.setdefault("timeout", 60)
    deadline = time.monotonic() + 60
    while True:
        answer = requests.request(method, app.url(path), headers=headers, **kwargs)
        if answer.status_code not in (502, 503, 504) or time.monotonic() > deadline:
            return answer
        time.sleep(1)


def api_key(app: RunningStack) -> str:
    return app.exec("cat /run/secrets/api_key").strip()


def rest(app: RunningStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    """A REST API call with the API key."""
    headers = {"X-API-Key": api_key(app), **kwargs.pop("headers", {})}
    return send(app, method, path, headers=headers, **kwargs)


def add_folder(app: RunningStack, folder_id: str, path: str) -> None:
    app.exec(f"mkdir -p '{path}'")
    answer = rest(
        app,
        "POST",
        "/rest/config/folders",
        json={"id": folder_id, "label": folder_id, "path": path, "rescanIntervalS": 3600},
    )
    assert answer.status_code == 200, f"POST /rest/config/folders: {answer.status_code}"


def status(app: RunningStack, folder_id: str) -> dict[str, Any]:
    answer = rest(app, "GET", "/rest/db/status", params={"folder": folder_id})
    assert answer.status_code == 200, f"GET /rest/db/status: {answer.status_code} {answer.text}"
    return dict(answer.json())


def scanned(app: RunningStack, folder_id: str, files: int, seconds: float = 90) -> dict[str, Any]:
    """Ask for a scan (again while the folder is still starting) until the folder is idle
    and counts `files` local files; the last status."""
    deadline = time.monotonic() + seconds
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        rest(app, "POST", "/rest/db/scan", params={"folder": folder_id})
        last = status(app, folder_id)
        if last.get("state") == "idle" and last.get("localFiles") == files:
            return last
        time.sleep(1)
    raise AssertionError(f"folder {folder_id} did not count {files} file(s): {last}")


SEEDED = "commonshelf-seeded"
SEEDED_FILE = "seeded.txt"
SEEDED_TEXT = "Seeded by the Commonshelf matrix\n"


def seed(app: RunningStack) -> None:
    path = f"{FOLDERS}/{SEEDED}"
    add_folder(app, SEEDED, path)
    app.exec(f"printf '%s' '{SEEDED_TEXT}' > '{path}/{SEEDED_FILE}'")
    scanned(app, SEEDED, 1)


def verify(app: RunningStack) -> None:
    folder = rest(app, "GET", f"/rest/config/folders/{SEEDED}")
    assert folder.status_code == 200, f"folder {SEEDED} is gone: {folder.status_code}"
    assert folder.json()["path"] == f"{FOLDERS}/{SEEDED}"
    assert scanned(app, SEEDED, 1)["localBytes"] == len(SEEDED_TEXT)
    entry = rest(app, "GET", "/rest/db/file", params={"folder": SEEDED, "file": SEEDED_FILE})
    assert entry.status_code == 200, f"GET /rest/db/file: {entry.status_code}"
    assert entry.json()["local"]["size"] == len(SEEDED_TEXT)
