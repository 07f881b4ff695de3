"""Serve the signed repository (`public/`) over HTTP on loopback: the demo, tests, benchmarks.

A poll with nothing new costs an installation two requests, one answered 404 (the next
root version). Python's `http.server` answers that 404 with an HTML page of ~340 bytes
and lists folders; `StaticHandler` serves files only (GET and HEAD), answers every error
with one short plain-text line and names no software version, so what a poll costs here
is what it costs against any plain static host. It can count what it sends (`Traffic`),
so tests and benchmarks measure a poll at the server, where an installation's cost lands.

It answers conditional requests as a static host or CDN would: every file carries an `ETag`
(from its content, so a replaced `timestamp.json` never keeps an old tag however fast it is
rewritten) and `Last-Modified`; `If-None-Match` (or, without it, `If-Modified-Since`)
answers 304 with no body. A folder is served only through its `index.html` (the catalogue
page), and nothing outside the folder is ever served: `..`, hidden names and symbolic
links that lead out are all 404.

Run it in the foreground with
`python -m commonshelf.catalogue.server --directory public --bind 127.0.0.1 8700`.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import hashlib
import http.server
import io
import os
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from http import HTTPStatus
from pathlib import Path
from typing import Any, BinaryIO

from commonshelf.platform import environment
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.progress import Say, quiet
from commonshelf.platform.settings import Settings
from commonshelf.platform.wait import poll

MODULE = "commonshelf.catalogue.server"
INDEX = "index.html"
# by suffix, not from the machine's /etc/mime.types: the same answer on every host
CONTENT_TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".yml": "application/yaml",
    ".yaml": "application/yaml",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
}
ETAG_HEX = 32  # 128 bits of the content's sha256: unique enough, and a poll stays small


@dataclass(frozen=True)
class Response:
    """One answer the server sent: what was asked, the status, and the bytes on the wire."""

    path: str
    status: int
    header_bytes: int
    body_bytes: int


class Traffic:
    """Every response a server sent, in order. Handlers run on threads and a client may have
    read a whole response before its handler records it, so `take` waits for open ones."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._responses: list[Response] = []
        self._open = 0

    def opened(self) -> None:
        with self._changed:
            self._open += 1

    def closed(self) -> None:
        with self._changed:
            self._open -= 1
            self._changed.notify_all()

    def record(self, response: Response) -> None:
        with self._changed:
            self._responses.append(response)

    def take(self, timeout: float = 5.0) -> list[Response]:
        """The responses since the last `take` (waiting up to `timeout` s for connections
        still being answered), and forget them: one measurement each."""
        with self._changed:
            self._changed.wait_for(lambda: self._open == 0, timeout)
            taken, self._responses = self._responses, []
        return taken


class _Counting(io.BufferedIOBase):
    """The response stream, counting the bytes written through it."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self._raw = raw
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._raw.write(data)
        size = len(memoryview(data).cast("B"))
        self.count += size
        return size

    def flush(self) -> None:
        if not self._raw.closed:
            self._raw.flush()

    def close(self) -> None:
        try:
            super().close()  # flushes first
        finally:
            with contextlib.suppress(OSError):
                self._raw.close()


class StaticHandler(http.server.SimpleHTTPRequestHandler):
    """Files of one folder by GET or HEAD, with validators (ETag, Last-Modified) and 304s;
    anything else (a folder without an index, a missing file, a path leaving the folder,
    another method) is a one-line plain-text error. No listings: a mirror shows only what
    is signed."""

    server_version = "commonshelf"
    error_message_format = "%(code)d %(message)s\n"
    error_content_type = "text/plain; charset=utf-8"

    def __init__(
        self, *args: Any, directory: str, traffic: Traffic | None = None, log: bool = False
    ) -> None:
        self._traffic = traffic
        self._log = log
        self._status = 0
        self._header_bytes = 0
        self._root = Path(directory).resolve()
        super().__init__(*args, directory=directory)

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self._out = _Counting(self.wfile)
        self.wfile = self._out
        if self._traffic is not None:  # last: `finish` runs only if `setup` returned
            self._traffic.opened()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._traffic is not None:
                self._traffic.closed()

    def guess_type(self, path: Any) -> str:
        return CONTENT_TYPES.get(Path(str(path)).suffix.lower(), "application/octet-stream")

    def local_file(self) -> Path | None:
        """The regular file inside the served folder that the request names, or None.

        Refused rather than normalised: `.` and `..` segments, hidden names (a publish's
        temporary files), NUL, undecodable bytes, and any path whose real location (symbolic
        links followed) is outside the folder. A folder stands for its index.html."""
        wanted = self.path.split("?", 1)[0].split("#", 1)[0]  # as http.server: `//x` is a path
        try:
            text = urllib.parse.unquote(wanted, errors="strict")
        except UnicodeDecodeError:
            return None
        words = [word for word in text.split("/") if word]
        if any(word.startswith(".") or "\\" in word or "\0" in word for word in words):
            return None
        try:
            found = self._root.joinpath(*words).resolve(strict=True)
            if text.endswith("/"):  # a folder, by its index; a file named so is not found
                found = (found / INDEX).resolve(strict=True) if found.is_dir() else self._root
            inside = found.is_relative_to(self._root) and found.is_file()
        except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, an odd name
            return None
        return found if inside else None

    def send_head(self) -> BinaryIO | None:
        path = self.local_file()
        if path is None:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        try:
            stream = path.open("rb")
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        try:
            digest = hashlib.file_digest(stream, "sha256").hexdigest()  # the bytes sent
            stream.seek(0)
            stat = os.fstat(stream.fileno())  # the file opened, even if replaced since
            etag = f'"{digest[:ETAG_HEX]}"'
            modified = int(stat.st_mtime)
            if self._not_modified(etag, modified):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", self.date_time_string(modified))
                self.end_headers()
                stream.close()
                return None
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", self.guess_type(path))
            self.send_header("Content-Length", str(stat.st_size))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", self.date_time_string(modified))
            self.end_headers()
            return stream
        except BaseException:
            stream.close()
            raise

    def _not_modified(self, etag: str, modified: int) -> bool:
        """RFC 9110 13.2.2: If-None-Match decides when present (weak comparison, `*`);
        otherwise If-Modified-Since, if it parses, against the whole-second mtime."""
        tags = self.headers.get("If-None-Match")
        if tags is not None:
            wanted = {tag.strip().removeprefix("W/") for tag in tags.split(",")}
            return "*" in wanted or etag in wanted
        since = self.headers.get("If-Modified-Since")
        if since is None:
            return False
        try:
            when = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError, OverflowError):
            return False  # an unreadable date is ignored, as the RFC says
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return modified <= when.timestamp()

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = int(code)
        super().send_response(code, message)

    def flush_headers(self) -> None:
        before = self._out.count
        super().flush_headers()
        self._header_bytes += self._out.count - before

    def handle_one_request(self) -> None:
        self._status, self._header_bytes, start = 0, 0, self._out.count
        super().handle_one_request()
        if self._traffic is not None and self._status:
            body = self._out.count - start - self._header_bytes
            path = getattr(self, "path", "")
            self._traffic.record(Response(path, self._status, self._header_bytes, body))

    def log_message(self, format: str, *args: Any) -> None:
        if self._log:
            super().log_message(format, *args)


def make_server(
    directory: Path,
    port: int = 0,
    *,
    bind: str = "127.0.0.1",
    traffic: Traffic | None = None,
    log: bool = False,
) -> http.server.ThreadingHTTPServer:
    """A server for `directory` on `bind`:`port` (0: any free port), not yet serving."""

    def handler(*args: Any) -> StaticHandler:
        return StaticHandler(*args, directory=str(directory), traffic=traffic, log=log)

    server = http.server.ThreadingHTTPServer((bind, port), handler)
    server.daemon_threads = True
    return server


@contextlib.contextmanager
def serving(directory: Path, traffic: Traffic | None = None) -> Iterator[str]:
    """Serve `directory` on a free loopback port in a thread; yields the base URL."""
    server = make_server(directory, traffic=traffic)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def ensure_catalogue_server(settings: Settings, say: Say = quiet) -> str:
    """Serve public/ on loopback in the background (what `invoke serve` does in the foreground)."""
    import urllib.request

    url = settings.catalogue_url
    # the module is part of the note: a server started by an older command is replaced
    note = f"{settings.public_dir} {MODULE}"
    name = f"catalogue-{settings.catalogue_port}"
    pid = environment.daemon_pid(settings, name)
    pidfile = settings.state_dir / "run" / f"{name}.pid"
    if pid is not None and pidfile.read_text().strip().split(maxsplit=1)[1:] == [note]:
        return url
    environment.stop_daemon(settings, name)
    say(f"Serving {settings.public_dir} at {url}")
    environment.spawn_daemon(
        settings,
        name,
        [
            sys.executable,
            "-m",
            MODULE,
            "--bind",
            "127.0.0.1",
            "--directory",
            str(settings.public_dir),
            str(settings.catalogue_port),
        ],
        note=note,
    )

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/metadata/1.root.json", timeout=2):
                return True
        except OSError:
            return False

    if poll(answers, 10, 0.2):
        return url
    raise CommonshelfError(
        f"The catalogue server on {url} did not start.",
        f"another process may hold port {settings.catalogue_port} "
        "(set COMMONSHELF_CATALOGUE_PORT).",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__)
    parser.add_argument("--directory", type=Path, default=Path.cwd(), help="folder to serve")
    parser.add_argument("--bind", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument("port", type=int, help="port to listen on")
    args = parser.parse_args(argv)
    try:
        server = make_server(args.directory.resolve(), args.port, bind=args.bind, log=True)
    except OSError as exc:
        refused = CommonshelfError(
            f"Cannot serve on {args.bind}:{args.port} ({exc.strerror or exc}).",
            "pick a free port, or stop the process that holds it.",
        )
        print(refused, file=sys.stderr)
        return 1
    print(f"Serving {args.directory} at http://{args.bind}:{args.port}/", flush=True)
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
