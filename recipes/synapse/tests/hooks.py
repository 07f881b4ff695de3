"""Seed hook for the standard matrix, through Synapse's own client-server API: a user
registered with the shared-secret admin API, a room, a message; verify() logs in again
(it runs in another process), finds the room among the user's joined rooms and reads the
message back. The helpers are used by the recipe's own tests too."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any
from urllib.parse import quote

import requests

from commonshelf.harness import RunningStack

SEED_USER = "seeded"
SEED_ROOM = "Seeded by the Commonshelf matrix"
SEED_MESSAGE = "Hello from the Commonshelf matrix: this message must survive."
TIMEOUT = 30


def password_for(user: str) -> str:
    """A test user's password, made up from its name (no password is written in the recipe)."""
    return hashlib.sha256(f"commonshelf test user {user}".encode()).hexdigest()[:32]


def routing_headers(app: RunningStack) -> dict[str, str]:
    """The headers `app.get` adds to reach the app: behind the matrix's proxy a request to
    `app.url(path)` needs the app's Host header, which only `app.get` knows. Read it off a
    request `app.get` prepared (none is added in the recipe's own tests)."""
    if id(app) not in _ROUTING:
        host = app.get("/health").request.headers.get("Host")
        _ROUTING[id(app)] = {"Host": str(host)} if host else {}
    return _ROUTING[id(app)]


_ROUTING: dict[int, dict[str, str]] = {}


def call(app: RunningStack, method: str, path: str, token: str | None = None,
         **kwargs: Any) -> requests.Response:
    """One client-server API request; waits out rate limiting (429) a few times."""
    headers = {**routing_headers(app), **kwargs.pop("headers", {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for _ in range(5):
        answer = requests.request(method, app.url(path), headers=headers, timeout=TIMEOUT,
                                  **kwargs)
        if answer.status_code != 429:
            return answer
        wait_ms = answer.json().get("retry_after_ms", 1000)
        time.sleep(min(wait_ms / 1000, 30) + 0.1)
    return answer


def registration_secret(app: RunningStack) -> str:
    """The shared secret for admin registration, as the app reads it (never printed)."""
    return app.exec("cat /run/secrets/registration_shared_secret").strip()


def register(app: RunningStack, user: str, password: str, admin: bool = False,
             secret: str | None = None) -> requests.Response:
    """Register through /_synapse/admin/v1/register: GET a nonce, POST it with an HMAC-SHA1
    over nonce, user, password and admin flag keyed with the registration shared secret."""
    nonce_answer = call(app, "GET", "/_synapse/admin/v1/register")
    assert nonce_answer.status_code == 200, nonce_answer.text
    nonce = nonce_answer.json()["nonce"]
    key = (secret if secret is not None else registration_secret(app)).encode()
    message = b"\x00".join(
        [nonce.encode(), user.encode(), password.encode(), b"admin" if admin else b"notadmin"]
    )
    mac = hmac.new(key, message, hashlib.sha1).hexdigest()
    return call(app, "POST", "/_synapse/admin/v1/register", json={
        "nonce": nonce, "username": user, "password": password, "admin": admin, "mac": mac,
    })


def login(app: RunningStack, user: str, password: str) -> requests.Response:
    return call(app, "POST", "/_matrix/client/v3/login", json={
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    })


def create_room(app: RunningStack, token: str, name: str) -> str:
    answer = call(app, "POST", "/_matrix/client/v3/createRoom", token,
                  json={"name": name, "preset": "private_chat"})
    assert answer.status_code == 200, f"createRoom answered {answer.status_code}: {answer.text}"
    return str(answer.json()["room_id"])


def send_text(app: RunningStack, token: str, room_id: str, body: str) -> str:
    path = (f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/"
            f"{uuid.uuid4().hex}")
    answer = call(app, "PUT", path, token, json={"msgtype": "m.text", "body": body})
    assert answer.status_code == 200, f"send answered {answer.status_code}: {answer.text}"
    return str(answer.json()["event_id"])


def text_messages(app: RunningStack, token: str, room_id: str) -> list[str]:
    """The bodies of the room's latest text messages, newest first (GET /messages)."""
    answer = call(app, "GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages",
                  token, params={"dir": "b", "limit": "50"})
    assert answer.status_code == 200, f"/messages answered {answer.status_code}: {answer.text}"
    return [
        event["content"].get("body", "")
        for event in answer.json().get("chunk", [])
        if event.get("type") == "m.room.message"
    ]


def room_named(app: RunningStack, token: str, name: str) -> str | None:
    """The id of the joined room called `name` (GET /joined_rooms, then each room's name)."""
    answer = call(app, "GET", "/_matrix/client/v3/joined_rooms", token)
    assert answer.status_code == 200, f"/joined_rooms answered {answer.status_code}: {answer.text}"
    for room_id in answer.json()["joined_rooms"]:
        state = call(app, "GET",
                     f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/m.room.name",
                     token)
        if state.status_code == 200 and state.json().get("name") == name:
            return str(room_id)
    return None


def seed(app: RunningStack) -> None:
    answer = register(app, SEED_USER, password_for(SEED_USER))
    assert answer.status_code == 200, f"admin register answered {answer.status_code}: {answer.text}"
    token = answer.json()["access_token"]
    room_id = create_room(app, token, SEED_ROOM)
    send_text(app, token, room_id, SEED_MESSAGE)


def verify(app: RunningStack) -> None:
    answer = login(app, SEED_USER, password_for(SEED_USER))
    assert answer.status_code == 200, f"login answered {answer.status_code}: {answer.text}"
    token = answer.json()["access_token"]
    room_id = room_named(app, token, SEED_ROOM)
    assert room_id, f"the user {SEED_USER} is no longer in the room '{SEED_ROOM}'"
    assert SEED_MESSAGE in text_messages(app, token, room_id)
