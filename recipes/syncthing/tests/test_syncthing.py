"""Syncthing: the GUI behind a login, the REST API behind the generated API key, no
outbound services, and folders added through the API scan their files and survive a
restart together with the device's identity."""

from __future__ import annotations

from hooks import (  # type: ignore[import-not-found]
    FOLDERS,
    HEALTH,
    add_folder,
    rest,
    scanned,
    send,
    status,
)

from commonshelf.harness import RunningStack
from commonshelf.recipe import Recipe


def test_health_path_answers_without_a_login(app: RunningStack, recipe: Recipe) -> None:
    assert recipe.main.health == HEALTH
    health = app.get(HEALTH)
    assert health.status_code == 200
    assert health.json() == {"ping": "pong"}
    assert send(app, "POST", HEALTH).status_code == 403  # GET only


def test_the_gui_needs_the_admin_login(app: RunningStack) -> None:
    assert app.get("/").status_code == 401
    password = app.exec("cat /run/secrets/gui_password").strip()
    assert app.get("/", auth=("admin", "wrong-password")).status_code == 401
    page = app.get("/", auth=("admin", password), headers={"Host": "syncthing.example.org"})
    assert page.status_code == 200  # any Host: the proxy sends the app's own hostname
    assert "Syncthing" in page.text


def test_the_rest_api_needs_the_api_key(app: RunningStack) -> None:
    assert app.get("/rest/system/status").status_code == 401
    wrong = app.get("/rest/system/status", headers={"X-API-Key": "not-the-key"})
    assert wrong.status_code == 401
    assert rest(app, "GET", "/rest/system/status").status_code == 200


def test_runs_the_declared_upstream_version(app: RunningStack, recipe: Recipe) -> None:
    version = rest(app, "GET", "/rest/system/version").json()
    assert version["version"].startswith(f"v{recipe.upstream_version}")


def test_runs_unprivileged(app: RunningStack) -> None:
    assert app.exec("id -u").strip() != "0"
    assert app.exec("awk '/^Uid:/ {print $2}' /proc/1/status").strip() != "0"


def test_no_outbound_services(app: RunningStack) -> None:
    options = rest(app, "GET", "/rest/config/options").json()
    assert options["globalAnnounceEnabled"] is False
    assert options["localAnnounceEnabled"] is False
    assert options["relaysEnabled"] is False
    assert options["natEnabled"] is False
    assert options["urAccepted"] == -1
    assert options["autoUpgradeIntervalH"] == 0
    assert options["crashReportingEnabled"] is False
    assert options["listenAddresses"] == ["tcp://0.0.0.0:22000"]
    gui = rest(app, "GET", "/rest/config/gui").json()
    assert gui["insecureSkipHostcheck"] is True
    assert gui["user"] == "admin"


def test_a_folder_scans_its_files(app: RunningStack) -> None:
    path = f"{FOLDERS}/photos"
    add_folder(app, "photos", path)
    app.exec(f"echo one > {path}/one.txt && mkdir -p {path}/sub && echo two > {path}/sub/two.txt")
    done = scanned(app, "photos", 2)
    assert done["localDirectories"] == 1
    assert done["globalFiles"] == 2
    assert done["errors"] == 0


def test_config_folders_and_identity_survive_a_restart(app: RunningStack) -> None:
    path = f"{FOLDERS}/kept"
    add_folder(app, "kept", path)
    app.exec(f"echo 'kept across restarts' > {path}/kept.txt")
    scanned(app, "kept", 1)
    device = rest(app, "GET", "/rest/system/status").json()["myID"]

    app.restart()

    assert rest(app, "GET", "/rest/system/status").json()["myID"] == device
    folder = rest(app, "GET", "/rest/config/folders/kept").json()
    assert folder["path"] == path
    assert scanned(app, "kept", 1)["localBytes"] == len("kept across restarts\n")
    assert status(app, "kept")["errors"] == 0
