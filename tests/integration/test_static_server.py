"""`public/` served as a static host serves it, by the project's own server on 127.0.0.1:
validators (ETag, Last-Modified) and 304s, content types, HEAD, the catalogue page as the
folder's index, no listings, and nothing outside the folder, however the path is spelt.
`invoke serve` is run as a person runs it and answers the same way."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import pytest

from commonshelf.catalogue.server import serving
from commonshelf.platform.fsutil import write_bytes_atomic
from commonshelf.platform.wait import poll

from ..conftest import free_port

REPO = Path(__file__).resolve().parents[2]
TIMESTAMP = b'{"signed": {"_type": "timestamp", "version": 7}}\n'
PAGE = b'<!DOCTYPE html>\n<html lang="en"><title>t</title></html>\n'


class Answer:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()


def ask(base: str, path: str, method: str = "GET", **headers: str) -> Answer:
    """One request with `path` sent byte for byte (no client-side normalisation)."""
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name.replace("_", "-"), value)
        connection.endheaders()
        return Answer(connection.getresponse())
    finally:
        connection.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A published folder with metadata, a target, the page, and a secret beside it."""
    public = tmp_path / "public"
    write_bytes_atomic(public / "metadata" / "timestamp.json", TIMESTAMP)
    write_bytes_atomic(public / "targets" / "apps" / "abc.compose.yml", b"services: {}\n")
    write_bytes_atomic(public / "index.html", PAGE)
    write_bytes_atomic(tmp_path / "keys" / "root.pem", b"PRIVATE KEY\n")
    with serving(public) as url:
        yield url, public


def test_files_carry_validators_and_answer_conditional_requests_with_304(
    site: tuple[str, Path],
) -> None:
    url, public = site
    first = ask(url, "/metadata/timestamp.json")
    assert first.status == 200 and first.body == TIMESTAMP
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["Content-Length"] == str(len(TIMESTAMP))
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 20
    assert parsedate_to_datetime(modified).timestamp() == int(
        (public / "metadata" / "timestamp.json").stat().st_mtime
    )
    assert first.headers["Server"] == "commonshelf"  # no software version named

    for tags in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = ask(url, "/metadata/timestamp.json", If_None_Match=tags)
        assert (again.status, again.body) == (304, b""), tags
        assert again.headers["ETag"] == etag
    assert ask(url, "/metadata/timestamp.json", If_None_Match='"other"').status == 200

    assert ask(url, "/metadata/timestamp.json", If_Modified_Since=modified).status == 304
    later = formatdate(time.time() + 3600, usegmt=True)
    earlier = formatdate(time.time() - 3600, usegmt=True)
    assert ask(url, "/metadata/timestamp.json", If_Modified_Since=later).status == 304
    assert ask(url, "/metadata/timestamp.json", If_Modified_Since=earlier).status == 200
    assert ask(url, "/metadata/timestamp.json", If_Modified_Since="yesterday").status == 200
    # If-None-Match decides when both are sent (RFC 9110): a changed tag means a new file
    both = ask(url, "/metadata/timestamp.json", If_None_Match='"old"', If_Modified_Since=later)
    assert both.status == 200 and both.body == TIMESTAMP

    # replaced in the same second by a file of the same size: the content tag still moves
    newer = TIMESTAMP.replace(b"7", b"8")
    write_bytes_atomic(public / "metadata" / "timestamp.json", newer)
    fresh = ask(url, "/metadata/timestamp.json", If_None_Match=etag)
    assert (fresh.status, fresh.body) == (200, newer)
    assert fresh.headers["ETag"] != etag


def test_head_types_and_the_catalogue_page_as_the_index(site: tuple[str, Path]) -> None:
    url, _ = site
    head = ask(url, "/metadata/timestamp.json", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == str(len(TIMESTAMP)) and head.headers["ETag"]
    page = ask(url, "/")
    assert (page.status, page.body) == (200, PAGE)
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert ask(url, "/", If_None_Match=page.headers["ETag"]).status == 304
    assert ask(url, "/index.html").headers["ETag"] == page.headers["ETag"]
    compose = ask(url, "/targets/apps/abc.compose.yml")
    assert compose.headers["Content-Type"] == "application/yaml"
    # folders: no listing, with or without the slash; other methods refused
    for folder in ("/metadata/", "/metadata", "/targets/apps/"):
        answer = ask(url, folder)
        assert answer.status == 404 and b"timestamp" not in answer.body, folder
        assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert ask(url, "/", method="POST").status == 501


def test_nothing_outside_the_folder_is_served(site: tuple[str, Path], tmp_path: Path) -> None:
    url, public = site
    outside = tmp_path / "keys"
    (public / "key.pem").symlink_to(outside / "root.pem")
    (public / "keys").symlink_to(outside)
    (public / "inside.json").symlink_to(public / "metadata" / "timestamp.json")
    write_bytes_atomic(public / "metadata" / ".timestamp.json.abc.tmp", b"half written")
    for path in (
        "/key.pem",
        "/keys/root.pem",
        "/../keys/root.pem",
        "/metadata/../../keys/root.pem",
        "/%2e%2e/keys/root.pem",
        "/metadata/%2E%2E/%2E%2E/keys/root.pem",
        "/..%2fkeys/root.pem",
        "//etc/passwd",
        "/etc/passwd",
        "/metadata/.timestamp.json.abc.tmp",
        "/metadata/timestamp.json%00.html",
        "/%ff%fe",
        "/metadata/timestamp.json/",
    ):
        answer = ask(url, path)
        assert answer.status == 404, path
        assert b"PRIVATE" not in answer.body and b"root:" not in answer.body, path
    # a link that stays inside is an ordinary file; a query string is not part of the path
    assert ask(url, "/inside.json").body == TIMESTAMP
    assert ask(url, "/metadata/timestamp.json?x=1#y").body == TIMESTAMP
    assert ask(url, "//metadata//timestamp.json").body == TIMESTAMP  # as http.server reads it


def test_invoke_serve_answers_conditional_requests(tmp_path: Path) -> None:
    """`invoke serve` as a person runs it in a clone: public/ on 127.0.0.1 with 304s."""
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(REPO / "tasks.py", clone / "tasks.py")
    write_bytes_atomic(clone / "public" / "metadata" / "timestamp.json", TIMESTAMP)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "COMMONSHELF_ROOT"}
    server = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(clone), "serve", "--port", str(port)],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            try:
                return ask(url, "/metadata/timestamp.json").status == 200
            except OSError:
                return False

        assert poll(answers, 20, 0.1), "invoke serve did not answer"
        first = ask(url, "/metadata/timestamp.json")
        assert first.body == TIMESTAMP
        again = ask(url, "/metadata/timestamp.json", If_None_Match=first.headers["ETag"])
        assert (again.status, again.body) == (304, b"")
        assert ask(url, "/metadata/").status == 404
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C, which the task says stops it
        output = server.communicate(timeout=10)[0].decode()
    assert f"http://127.0.0.1:{port}/" in output
    assert '"GET /metadata/timestamp.json HTTP/1.1" 304' in output  # logged as it serves
