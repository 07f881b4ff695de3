"""Synapse through its own client-server API: shared-secret registration, login, rooms and
messages, closed public registration, no federation, and data kept across restarts."""

from __future__ import annotations

import importlib.util
import time
import uuid
from pathlib import Path

from commonshelf.harness import RunningStack
from commonshelf.recipe import Recipe

# The seed hooks' client helpers, loaded under a name of their own (other recipes have
# a hooks.py too).
_spec = importlib.util.spec_from_file_location("synapse_hooks", Path(__file__).with_name("hooks.py"))
assert _spec and _spec.loader
hooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hooks)

SECRETS = ("db_password", "registration_shared_secret", "macaroon_secret_key", "form_secret")


def new_user(app: RunningStack) -> tuple[str, str, str]:
    """A fresh user registered with the shared secret: (user id, password, access token)."""
    name = f"user{uuid.uuid4().hex[:10]}"
    password = hooks.password_for(name)
    answer = hooks.register(app, name, password)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["user_id"], password, body["access_token"]


def test_health_path_answers(app: RunningStack, recipe: Recipe) -> None:
    health = app.get(recipe.main.health)
    assert health.status_code == 200
    assert health.text.strip() == "OK"


def test_runs_the_declared_upstream_version(app: RunningStack, recipe: Recipe) -> None:
    out = app.exec("python -c 'import synapse; print(synapse.__version__)'")
    assert out.strip() == recipe.upstream_version
    versions = app.get("/_matrix/client/versions")
    assert versions.status_code == 200
    assert "v1.11" in versions.json()["versions"]


def test_runs_unprivileged(app: RunningStack) -> None:
    assert app.exec("id -u").strip() != "0"


def test_server_name_is_the_settings_default(app: RunningStack, recipe: Recipe) -> None:
    user_id, _, _ = new_user(app)
    assert user_id.endswith(":" + recipe.manifest["env"]["SERVER_NAME"]["default"])


def test_open_registration_is_closed_by_default(app: RunningStack) -> None:
    answer = hooks.call(app, "POST", "/_matrix/client/v3/register",
                        json={"username": "intruder", "password": hooks.password_for("x")})
    assert answer.status_code == 403
    assert answer.json()["errcode"] == "M_FORBIDDEN"


def test_shared_secret_registration_needs_the_secret(app: RunningStack) -> None:
    answer = hooks.register(app, "forger", hooks.password_for("forger"), secret="not-the-secret")
    assert answer.status_code == 403
    assert answer.json()["error"] == "HMAC incorrect"


def test_user_logs_in_creates_a_room_and_reads_a_message_back(app: RunningStack) -> None:
    user_id, password, _ = new_user(app)
    answer = hooks.login(app, user_id, password)
    assert answer.status_code == 200, answer.text
    assert answer.json()["user_id"] == user_id
    token = answer.json()["access_token"]
    whoami = hooks.call(app, "GET", "/_matrix/client/v3/account/whoami", token)
    assert whoami.json()["user_id"] == user_id
    room_id = hooks.create_room(app, token, "Test room")
    hooks.send_text(app, token, room_id, "first message")
    hooks.send_text(app, token, room_id, "second message")
    assert hooks.text_messages(app, token, room_id)[:2] == ["second message", "first message"]
    assert hooks.room_named(app, token, "Test room") == room_id


def test_a_wrong_password_is_refused(app: RunningStack) -> None:
    user_id, _, _ = new_user(app)
    answer = hooks.login(app, user_id, hooks.password_for("someone else"))
    assert answer.status_code == 403
    assert answer.json()["errcode"] == "M_FORBIDDEN"
    assert "access_token" not in answer.json()


def test_requests_without_a_token_are_refused(app: RunningStack) -> None:
    answer = hooks.call(app, "GET", "/_matrix/client/v3/joined_rooms")
    assert answer.status_code == 401
    assert answer.json()["errcode"] == "M_MISSING_TOKEN"


def test_no_federation_is_served(app: RunningStack) -> None:
    assert app.get("/_matrix/federation/v1/version").status_code == 404
    assert app.get("/_matrix/key/v2/server").status_code == 404


def test_config_is_private_and_secrets_stay_out_of_the_logs(app: RunningStack) -> None:
    assert app.exec("stat -c '%a %U' /etc/synapse/homeserver.yaml").split() == ["600", "synapse"]
    assert app.exec("stat -c '%a' /var/lib/synapse/keys/signing.key").strip() == "600"
    logs = app.logs("app", lines=2000)
    for name in SECRETS:
        value = app.exec(f"cat /run/secrets/{name}").strip()
        assert len(value) >= 16
        assert value not in logs


def test_data_and_signing_key_survive_a_restart(app: RunningStack) -> None:
    key_before = app.exec("sha256sum /var/lib/synapse/keys/signing.key")
    hooks.seed(app)
    hooks.verify(app)
    app.restart()
    hooks.verify(app)
    assert app.exec("sha256sum /var/lib/synapse/keys/signing.key") == key_before


def test_the_app_waits_for_the_database(app: RunningStack) -> None:
    """Started while the database is down, the app keeps waiting (no crash loop), then serves."""
    db = app.services["db"].docker_container
    synapse = app.services["app"].docker_container
    db.stop(timeout=20)
    try:
        since = int(time.time())
        synapse.restart(timeout=20)
        deadline = time.monotonic() + 90
        while b"waiting for the database" not in synapse.logs(since=since):
            assert time.monotonic() < deadline, synapse.logs(tail=20).decode(errors="replace")
            time.sleep(1)
        time.sleep(5)
        synapse.reload()
        assert synapse.attrs["State"]["Status"] == "running"
        assert synapse.attrs["RestartCount"] == 0
    finally:
        db.start()
    app.wait_healthy()
    hooks.verify(app)


LOAD_CONFIG = (
    "python -c 'from synapse.config.homeserver import HomeServerConfig as C; "
    'c = C.load_config("", ["-c", "/tmp/settings/homeserver.yaml"]); '
    "print(c.server.server_name, c.registration.enable_registration)'"
)


def test_settings_make_a_config_synapse_accepts(app: RunningStack) -> None:
    """ENABLE_REGISTRATION=true gives a configuration Synapse itself loads (open registration
    needs enable_registration_without_verification too); bad values are refused."""
    own_name = app.exec("cat /var/lib/synapse/server_name").strip()
    write = "SYNAPSE_CONFIG_DIR=/tmp/settings synapse-start --config-only"
    app.exec(f"SERVER_NAME={own_name} ENABLE_REGISTRATION=true {write}")
    assert app.exec(LOAD_CONFIG).split() == [own_name, "True"]
    app.exec(f"SERVER_NAME={own_name} ENABLE_REGISTRATION=False {write}")
    assert app.exec(LOAD_CONFIG).split() == [own_name, "False"]
    for bad in ("SERVER_NAME='Not A Name'", "ENABLE_REGISTRATION=maybe",
                "SERVER_NAME=another.example.org"):  # the server name cannot change
        refused = app.exec(f"{bad} {write} >/dev/null 2>&1; echo $?")
        assert refused.strip() == "2", bad
    app.exec("rm -rf /tmp/settings")


def test_the_database_schema_is_migrated_by_synapse(app: RunningStack) -> None:
    """Synapse applied its schema deltas itself, up to 1.163's 94/11 (sticky events backlog)."""
    psql = "psql -U postgres -d synapse -tA -c"
    delta = app.exec(
        f'{psql} "SELECT count(*) FROM applied_schema_deltas '
        "WHERE version = 94 AND file = '94/11_destination_room_sticky_events.sql'\"",
        service="db",
    )
    assert delta.strip() == "1"
    table = app.exec(
        f"{psql} \"SELECT to_regclass('destination_rooms_sticky_events_backlog') IS NOT NULL\"",
        service="db",
    )
    assert table.strip() == "t"
