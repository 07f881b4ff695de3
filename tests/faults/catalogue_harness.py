"""What the catalogue and release fault cases share: a fault-injecting catalogue server and
one real world to inject into.

The world is a private shelf whose one app is a copy of custom-html under a name of its
own (so its registry repository, images and tags are this run's alone and are removed
afterwards), built and released for real (images, registry, signatures), served on
127.0.0.1 by `FaultServer`, and one installation (own home, namespace and proxy port)
that installed it and holds seeded data in its `content` volume. Both fault modules use
the same world (`shared_world`): it is built once per session and removed at its end,
with a final check that nothing of it is left.

Run as a module, this file is also the subprocess side of two cases (see `main`).
"""

from __future__ import annotations

import contextlib
import http.server
import io
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import docker
import docker.errors
import requests

from commonshelf.ci.promote import release
from commonshelf.ci.rehearsal import remove_namespace
from commonshelf.ci.stages import Shelf
from commonshelf.installation import cli, swarm
from commonshelf.platform.settings import Settings
from commonshelf.platform.wait import poll
from commonshelf.recipes.scaffold import bump_recipe

from ..conftest import REPO, free_port
from ..integration.conftest import edit_yaml, namespace_leftovers, record_as_vetted

PAGE = b"written by the user\n"  # /srv/www/mine.html, served; plus a random blob, see seed()


def _quiet(_: str) -> None:
    pass


@dataclass
class Fault:
    """What the server does instead of serving the folder faithfully."""

    kind: Literal["none", "status", "delay", "truncate", "oversize", "folder", "replay"] = "none"
    status: int = 500
    seconds: float = 0.0
    folder: Path | None = None  # kind "folder": another repository's public/
    replay: dict[str, bytes] = field(default_factory=dict)  # kind "replay": path -> old bytes


class FaultServer:
    """A static server for a published folder on 127.0.0.1 that can fail on demand: be down
    (its port closed), answer 500, answer late, cut files short, pad timestamp.json far
    over its size limit, serve another repository, or replay old files. It counts every
    request it receives."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fault = Fault()
        self.port = free_port()
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._server: _Quiet | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        if self._server is None:
            self._server = _Quiet(("127.0.0.1", self.port), _handler(self))
            threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Close the port: connections are refused until `up`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def take(self) -> list[str]:
        """The paths asked for since the last `take`."""
        with self._lock:
            taken, self.seen = self.seen, []
        return taken

    def body(self, path: str) -> bytes | None:
        fault = self.fault
        if fault.kind == "replay" and path in fault.replay:
            return fault.replay[path]
        folder = fault.folder if fault.kind == "folder" and fault.folder else self.folder
        file = (folder / path.lstrip("/")).resolve()
        if not file.is_relative_to(folder.resolve()) or not file.is_file():
            return None
        data = file.read_bytes()
        if fault.kind == "oversize" and path.endswith("/timestamp.json"):
            data += b" " * 2_000_000  # valid JSON still, far over the 16 KB cap
        return data


class _Quiet(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up first (timeouts, caps) is the point of these faults


def _handler(server: FaultServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            with server._lock:
                server.seen.append(path)
            fault = server.fault
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            with contextlib.suppress(OSError):  # the client may have given up already
                self._answer(path, fault)

        def _answer(self, path: str, fault: Fault) -> None:
            if fault.kind == "status":
                self.send_error(fault.status, "injected fault")
                return
            data = server.body(path)
            if data is None:
                self.send_error(404, "File not found")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if fault.kind != "truncate":
                self.wfile.write(data)
                return
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@dataclass(frozen=True)
class State:
    """What a fault must not change: the app's record, its services' spec versions and the
    checksums of the seeded data."""

    record: bytes
    services: dict[str, int]
    data: dict[str, tuple[str, int]]  # path -> (sha256, size)


@dataclass
class World:
    settings: Settings  # the private shelf
    client: docker.DockerClient
    server: FaultServer
    app: str
    home: Path
    namespace: str
    http_port: int
    seeded: dict[str, tuple[str, int]] = field(default_factory=dict)

    # ---- the shelf side

    @property
    def folder(self) -> Path:
        return self.settings.recipes_dir / self.app

    def bump(self) -> str:
        """A new minor version whose page differs; returns it (not yet built)."""
        index = self.folder / "image" / "site" / "index.html"
        index.write_text(index.read_text().replace("</body>", f"<!-- {uuid.uuid4()} -->\n</body>"))
        return bump_recipe(self.folder, "minor")[1]

    def build(self) -> Shelf:
        """Build the recipe as it is now and record CI's gates as passed (CI is not the
        subject here; images and signatures stay real)."""
        shelf = Shelf(self.settings)
        [recipe] = shelf.recipes([self.app])
        assert shelf.build(recipe).passed
        record_as_vetted(shelf, recipe)
        return shelf

    def publish(self) -> str:
        shelf = self.build()
        [recipe] = shelf.recipes([self.app])
        outcome = release(self.settings, shelf.client, [recipe], shelf.base_tag, say=_quiet)
        assert outcome.released == [(self.app, recipe.version)], outcome.refused
        return recipe.version

    # ---- the installation side

    def cli(self, *args: str) -> tuple[int, str, str]:
        """`commonshelf --home HOME ARGS` in this process: exit code, stdout, stderr."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["--home", str(self.home), *args])
        return code, out.getvalue(), err.getvalue()

    def command(self, *args: str) -> list[str]:
        """The argv of a real `commonshelf` process (the console script beside this Python)."""
        script = Path(sys.executable).with_name("commonshelf")
        start = [str(script)] if script.exists() else [sys.executable, "-m", cli.__name__]
        return [*start, "--home", str(self.home), *args]

    @property
    def service(self) -> str:
        return f"{self.namespace}{self.app}_app"

    def exec(self, command: str) -> bytes:
        """Run `command` in the app's newest running task (an update may briefly run two)."""
        running = swarm.task_containers(self.client, self.service)
        assert running, f"{self.service} runs no task"
        container = max(running, key=lambda c: str(c.attrs["Created"]))
        code, output = container.exec_run(["sh", "-c", command])
        assert code == 0, output
        return bytes(output)

    def seed(self) -> None:
        self.exec("echo 'written by the user' > /srv/www/mine.html")
        self.exec("head -c 200000 /dev/urandom > /srv/www/blob.bin")
        self.seeded = self.data()

    def data(self) -> dict[str, tuple[str, int]]:
        """sha256 and size of each seeded file, read inside the running app."""
        found: dict[str, tuple[str, int]] = {}
        for path in ("/srv/www/mine.html", "/srv/www/blob.bin"):
            raw = self.exec(f"sha256sum {path} 2>/dev/null && wc -c < {path} || true").split()
            if len(raw) == 3:
                found[path] = (raw[0].decode(), int(raw[2]))
        return found

    def plain(self, text: str) -> str:
        """`text` without this run's home folder and port, for the report."""
        text = text.replace(str(self.home), "HOME").replace(
            self.server.url, "http://127.0.0.1:PORT"
        )
        return text.removeprefix("error: ")

    def lost_bytes(self, now: dict[str, tuple[str, int]]) -> int:
        """Seeded bytes missing or changed in `now`."""
        return sum(
            size for path, (sha, size) in self.seeded.items() if now.get(path) != (sha, size)
        )

    def serves(self) -> bool:
        """The seeded page, through the installation's proxy."""
        try:
            page = requests.get(
                f"http://127.0.0.1:{self.http_port}/mine.html",
                headers={"Host": f"{self.app}.localhost"},
                timeout=10,
            )
        except requests.RequestException:
            return False
        return page.status_code == 200 and page.content == PAGE

    def state(self) -> State:
        services = self.client.services.list(filters={"label": swarm.STACK_LABEL})
        return State(
            record=(self.home / "apps" / f"{self.app}.json").read_bytes(),
            services={
                s.name: int(s.attrs["Version"]["Index"])
                for s in services
                if s.name.startswith(self.namespace)
            },
            data=self.data(),
        )


def _build_world(base: Path, settings: Settings, client: docker.DockerClient) -> World:
    tag = uuid.uuid4().hex[:6]
    app = f"fault-html-{tag}"
    root = base / "shelf"
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
    shutil.copytree(REPO / "shared", root / "shared", ignore=ignore)
    shutil.copytree(REPO / "recipes" / "custom-html", root / "recipes" / app, ignore=ignore)
    edit_yaml(root / "recipes" / app / "recipe.yml", lambda m: m.update(name=app))
    (root / "pyproject.toml").write_text("[project]\nname = 'shelf-under-test'\n")
    shelf = Settings(
        root=root,
        state_dir=settings.state_dir,
        registry=settings.registry,
        catalogue_port=free_port(),
        debian_mirror=settings.debian_mirror,
    )
    server = FaultServer(shelf.public_dir)
    world = World(shelf, client, server, app, base / "agent", f"csc{tag}-", free_port())
    try:
        world.publish()
        server.up()
        root_file = shelf.public_dir / "metadata" / "1.root.json"
        code, _, err = world.cli(
            "init", "--repository", server.url, "--root", str(root_file), "--channel", "testing",
            "--http-port", str(world.http_port), "--namespace", world.namespace,
        )  # fmt: skip
        assert code == 0, err
        code, _, err = world.cli("install", app)
        assert code == 0, err
        world.seed()
        assert poll(world.serves, 60, 1.0), "the seeded page is not served"
    except BaseException:
        _remove_world(world)
        raise
    return world


def _remove_world(world: World) -> list[str]:
    """Remove everything the world made; what is still there afterwards."""
    world.server.down()
    remove_namespace(world.client, world.namespace)
    registry = world.settings.registry
    repository = f"commonshelf/{world.app}-app"
    accept = ", ".join(
        f"application/vnd.{kind}+json"
        for kind in ("docker.distribution.manifest.v2", "oci.image.manifest.v1")
    )
    with contextlib.suppress(requests.RequestException):
        tags = requests.get(f"http://{registry}/v2/{repository}/tags/list", timeout=10).json()
        for tag in tags.get("tags") or []:
            url = f"http://{registry}/v2/{repository}/manifests/{tag}"
            digest = requests.head(url, headers={"Accept": accept}, timeout=10).headers.get(
                "Docker-Content-Digest"
            )
            if digest:
                requests.delete(url.rpartition("/")[0] + f"/{digest}", timeout=10)

    # the registry API deletes manifests, not repositories: drop the emptied one from the
    # local registry's storage (this run's alone; blobs are left to its garbage collection)
    storage = world.settings.registry_dir / registry.rpartition(":")[2] / "data" / "docker"
    folder = storage / "registry" / "v2" / "repositories" / repository
    if folder.is_dir() and not any((folder / "_manifests" / "tags").glob("*")):
        shutil.rmtree(folder, ignore_errors=True)

    def images_gone() -> bool:
        for image in world.client.images.list():
            for ref in (*image.tags, *image.attrs.get("RepoDigests", [])):
                if f"commonshelf/{world.app}-" in ref:
                    with contextlib.suppress(docker.errors.APIError):
                        world.client.images.remove(ref)
        return not _leftover_images(world)

    poll(images_gone, 60, 2.0)  # task containers go a moment after their stack
    left = namespace_leftovers(world.client, world.namespace) + _leftover_images(world)
    with contextlib.suppress(requests.RequestException):
        listed = requests.get(f"http://{registry}/v2/_catalog?n=1000", timeout=10).json()
        left += [
            f"registry repository {r}" for r in listed.get("repositories") or [] if r == repository
        ]
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", world.server.port)) == 0:
            left.append(f"catalogue server on {world.server.port}")
    return left


def _leftover_images(world: World) -> list[str]:
    return [
        f"image {ref}"
        for image in world.client.images.list()
        for ref in (*image.tags, *image.attrs.get("RepoDigests", []))
        if f"commonshelf/{world.app}-" in ref
    ]


_SHARED: list[World] = []
_USERS = [0]


def shared_world(base: Path, settings: Settings, client: docker.DockerClient) -> Iterator[World]:
    """The session's world for a session-scoped fixture of each fault module: built by the
    first, removed after the last (then nothing of it may be left)."""
    if not _SHARED:
        _SHARED.append(_build_world(base, settings, client))
    _USERS[0] += 1
    try:
        yield _SHARED[0]
    finally:
        _USERS[0] -= 1
        if _USERS[0] == 0:
            left = _remove_world(_SHARED.pop())
            assert not left, f"the fault world left {left}"


# ---- the subprocess side: `python -m tests.faults.catalogue_harness …` (from the repository)


def _shift_clock(days: float) -> None:
    """Make this process's clock `days` ahead (negative: behind) for what reads the time in
    the agent's expiry decisions: python-tuf's reference time (`datetime.datetime.now` in
    tuf.ngclient._internal.trusted_metadata_set) and the agent's own clock (the error's
    "this machine's clock says", the history). The machine's clock cannot be changed by a
    test; this is what a machine with a wrong clock looks like to the agent."""
    import datetime as real
    import types

    from tuf.ngclient._internal import trusted_metadata_set

    from commonshelf.platform import clock

    class Shifted(real.datetime):
        @classmethod
        def now(cls, tz: real.tzinfo | None = None) -> Shifted:
            moved = real.datetime.now(tz) + real.timedelta(days=days)
            return cls.fromtimestamp(moved.timestamp(), tz)

    trusted_metadata_set.datetime = types.SimpleNamespace(  # type: ignore[assignment]
        datetime=Shifted, timezone=real.timezone
    )
    clock.datetime = Shifted  # type: ignore[attr-defined]


def _kill_while_publishing(when: str, suffix: str) -> None:
    """SIGKILL this process at the publisher's first write into public/ of a file whose name
    ends with `suffix`: right after it (`after`), or half-way through it (`during`: its
    temporary file half written, not yet renamed), as a crash or `kill -9` would. Each
    write's file name is printed first, so the test sees where the release stopped."""
    import os
    import signal
    import tempfile

    from commonshelf.catalogue import signing
    from commonshelf.platform.fsutil import write_bytes_atomic as real

    def write(path: Path, data: bytes, mode: int = 0o644) -> None:
        print(path.name, flush=True)
        if when == "during" and path.name.endswith(suffix):
            fd, _ = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.write(fd, data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        real(path, data, mode)
        if when == "after" and path.name.endswith(suffix):
            os.kill(os.getpid(), signal.SIGKILL)

    signing.write_bytes_atomic = write  # type: ignore[attr-defined]


def main(argv: list[str]) -> int:
    """`clock DAYS ARGS…`: `commonshelf ARGS…` under a clock DAYS ahead (see _shift_clock).
    `release WHEN SUFFIX ROOT STATE_DIR REGISTRY APP`: the release job for APP of the shelf
    at ROOT, killed at its write of a file named …SUFFIX (WHEN: after, during, or never).
    `publish WHEN SUFFIX PUBLIC KEYS TEXT`: a bare publish of catalog.json (TEXT), killed
    likewise."""
    from commonshelf.catalogue.signing import Publisher, load_or_create_keys

    match argv:
        case ["clock", days, *args]:
            _shift_clock(float(days))
            return cli.main(args)
        case ["release", when, suffix, root, state_dir, registry, app]:
            settings = Settings(
                root=Path(root),
                state_dir=Path(state_dir),
                registry=registry,
                catalogue_port=free_port(),
            )
            _kill_while_publishing(when, suffix)
            shelf = Shelf(settings)
            [recipe] = shelf.recipes([app])
            outcome = release(settings, shelf.client, [recipe], shelf.base_tag, say=_quiet)
            print(f"released {outcome.released}", flush=True)
            return 0
        case ["publish", when, suffix, public, keys, content]:
            _kill_while_publishing(when, suffix)
            signing_keys = load_or_create_keys(Path(keys), env={})[0]
            Publisher(Path(public), signing_keys).publish({"catalog.json": content.encode()})
            return 0
    print(main.__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
