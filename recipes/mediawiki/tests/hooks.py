"""Seed hook for the standard matrix: a wiki page and an uploaded file, written by the
administrator through MediaWiki's action API and read back the same way (anonymously,
as a reader would) after restarts, upgrades and restores.

The helpers here are the API client the recipe's tests use too. Requests other than
GET go through a `requests.Session` aimed at `app.url()`; behind the installation's
proxy it carries the Host header `app.get()` sends, so both reach the same wiki.
"""

from __future__ import annotations

import hashlib
import struct
import time
import zlib
from typing import Any
from urllib.parse import urlparse

import requests

from commonshelf.harness import RunningStack

HEALTH = "/api.php?action=query&meta=siteinfo&format=json"
PAGE = "Commonshelf seed"
TEXT = "Seeded by the '''Commonshelf''' matrix.\n\n[[Category:Commonshelf]]"
FILE = "Commonshelf-seed.png"


def png(rgb: tuple[int, int, int] = (0, 128, 96), size: int = 4) -> bytes:
    """A small valid PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class Wiki:
    """A client of the wiki's action API with its own cookies (one user's browser)."""

    def __init__(self, app: RunningStack) -> None:
        self.app = app
        self.session = requests.Session()
        probe = wait_until_up(app)
        host = probe.request.headers.get("Host")  # set when reached through the proxy
        if host:
            self.session.headers["Host"] = str(host)

    def get(self, **params: Any) -> dict[str, Any]:
        params = {"format": "json", "formatversion": "2", **params}
        answer = self.session.get(self.app.url("/api.php"), params=params, timeout=30)
        assert answer.status_code == 200, f"GET api.php {params}: HTTP {answer.status_code}"
        return dict(answer.json())

    def post(self, files: dict[str, Any] | None = None, **data: Any) -> dict[str, Any]:
        data = {"format": "json", "formatversion": "2", **data}
        answer = self.session.post(self.app.url("/api.php"), data=data, files=files, timeout=60)
        assert answer.status_code == 200, (
            f"POST api.php {data.get('action')}: HTTP {answer.status_code}"
        )
        return dict(answer.json())

    def token(self, kind: str = "csrf") -> str:
        return str(
            self.get(action="query", meta="tokens", type=kind)["query"]["tokens"][f"{kind}token"]
        )

    def login(self, user: str, password: str) -> dict[str, Any]:
        answer = self.post(
            action="clientlogin",
            username=user,
            password=password,
            logintoken=self.token("login"),
            loginreturnurl=self.app.url("/"),
        )
        return dict(answer["clientlogin"])

    def edit(self, title: str, text: str, summary: str = "") -> dict[str, Any]:
        return self.post(action="edit", title=title, text=text, summary=summary, token=self.token())

    def upload(self, filename: str, content: bytes, comment: str = "") -> dict[str, Any]:
        return self.post(
            files={"file": (filename, content, "image/png")},
            action="upload",
            filename=filename,
            comment=comment,
            ignorewarnings="1",
            token=self.token(),
        )

    def revision(self, title: str) -> dict[str, Any] | None:
        """The page's latest revision (content, user), or None when there is no such page."""
        page = self.get(
            action="query",
            prop="revisions",
            titles=title,
            rvprop="content|user|timestamp",
            rvslots="main",
        )["query"]["pages"][0]
        return None if page.get("missing") else dict(page["revisions"][0])


def wait_until_up(app: RunningStack, timeout: float = 120.0) -> requests.Response:
    """The health answer, once the API answers (it may be running update.php after a start)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = app.get(HEALTH)
        except requests.RequestException as exc:
            last = type(exc).__name__
        else:
            if answer.status_code == 200:
                return answer
            last = f"HTTP {answer.status_code}"
        time.sleep(2)
    raise AssertionError(f"GET {HEALTH}: {last} for {timeout:.0f}s")


def admin_name(wiki: Wiki) -> str:
    users = wiki.get(action="query", list="allusers", augroup="sysop", aulimit="1")["query"][
        "allusers"
    ]
    assert users, "the wiki has no administrator"
    return str(users[0]["name"])


def admin(app: RunningStack) -> Wiki:
    """A session logged in as the administrator, with the password the installation generated."""
    wiki = Wiki(app)
    result = wiki.login(admin_name(wiki), app.exec("cat /run/secrets/admin_password").strip())
    assert result["status"] == "PASS", result
    return wiki


def seed(app: RunningStack) -> None:
    wiki = admin(app)
    edited = wiki.edit(PAGE, TEXT, summary="seed")
    assert edited.get("edit", {}).get("result") == "Success", edited
    uploaded = wiki.upload(FILE, png(), comment="seed")
    if "error" in uploaded:  # the same file uploaded again by an earlier seed
        assert uploaded["error"]["code"] == "fileexists-no-change", uploaded
    else:
        assert uploaded["upload"]["result"] == "Success", uploaded


def verify(app: RunningStack) -> None:
    reader = Wiki(app)  # anonymous, as any reader
    revision = reader.revision(PAGE)
    assert revision is not None, f"page {PAGE!r} is missing"
    assert revision["slots"]["main"]["content"] == TEXT
    html = reader.get(action="parse", page=PAGE, prop="text")["parse"]["text"]
    assert "<b>Commonshelf</b>" in html
    info = reader.get(
        action="query", titles=f"File:{FILE}", prop="imageinfo", iiprop="url|sha1|size"
    )
    image = info["query"]["pages"][0]["imageinfo"][0]
    content = png()
    assert image["sha1"] == hashlib.sha1(content).hexdigest()
    served = reader.session.get(app.url(urlparse(image["url"]).path), timeout=30)
    assert served.status_code == 200, f"{image['url']}: HTTP {served.status_code}"
    assert served.content == content
