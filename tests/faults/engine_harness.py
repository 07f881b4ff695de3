"""The world of the engine-side fault cases (registry, engine restart, agent killed, disk full).

One private shelf (custom-html alone, its own keys, its own registry daemon) and one
installation of it (its own namespace, proxy port and home, the home on a tmpfs so a case
can make it small), shared by every case of test_engine_faults.py, test_agent_killed.py and
test_disk_full.py: each case publishes the next version (`publish`: a new image, since its
page carries the version), injects its fault, and checks that the app serves, the seeded
files are intact and the next `run` converges. The registry is a daemon of its own (started
like the machine's, by `environment.ensure_registry`), so stopping it or deleting an image
from it never touches what other test runs on this engine push. The catalogue is served
from this process by the counting server (`Traffic`): it outlives dockerd restarts, and
each case counts the requests its runs make (`count_from`, `requests_made`). Everything is
removed afterwards, and `World.close` fails the run if anything is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.server import Traffic, make_server
from commonshelf.ci.promote import release
from commonshelf.ci.rehearsal import remove_namespace
from commonshelf.ci.stages import Shelf
from commonshelf.installation import swarm
from commonshelf.installation.agent import Agent
from commonshelf.installation.state import Installed
from commonshelf.installation.volumes import HOLDER_LABEL
from commonshelf.platform import environment
from commonshelf.platform.settings import Settings
from commonshelf.platform.wait import poll

from ..conftest import REPO, free_port
from ..integration.conftest import edit_yaml, namespace_leftovers, record_as_vetted

APP = "custom-html"
UPSTREAM = "1.22.1"
MB = 1_000_000
HOME_SIZE = 64 * MB  # the installation's home: a tmpfs (five backups of the seeded files fit)
BLOB = 3 * MB  # the seeded file a backup must copy
COMMAND = Path(sys.executable).with_name("commonshelf")


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 0.1) -> None:
    """Poll `check` until it holds; fail the test saying `what` did not happen."""
    assert poll(lambda: bool(check()), timeout, every), f"{what} did not happen in {timeout:.0f} s"


@dataclass
class World:
    shelf: Settings
    client: docker.DockerClient
    home: Path
    namespace: str
    http_port: int
    major: int  # versions are MAJOR.N.0+1.22.1: a major no other test run builds
    minor: int = 0
    seeded: dict[str, tuple[str, int]] = field(default_factory=dict)  # file -> (sha256, size)
    traffic: Traffic = field(default_factory=Traffic)  # what the catalogue server answered
    server: ThreadingHTTPServer | None = None
    counted: list[str] = field(default_factory=list)  # paths the runs asked for since count_from
    runs: int = 0  # `commonshelf run`s (or in-process updates) started since count_from

    # ---- names

    @property
    def stack(self) -> str:
        return f"{self.namespace}{APP}"

    @property
    def service(self) -> str:
        return f"{self.stack}_app"

    @property
    def registry_port(self) -> str:
        return self.shelf.registry.rsplit(":", 1)[1]

    @property
    def backups(self) -> Path:
        return self.home / "backups" / APP

    # ---- the publishing side

    def publish(self) -> str:
        """Release the next minor version of custom-html (a new image) and return it."""
        self.minor += 1
        version = f"{self.major}.{self.minor}.0+{UPSTREAM}"
        folder = self.shelf.recipes_dir / APP
        manifest = folder / "recipe.yml"
        lines = manifest.read_text().splitlines(keepends=True)
        manifest.write_text(
            "".join(f"version: {version}\n" if x.startswith("version:") else x for x in lines)
        )
        changelog = folder / "CHANGELOG.md"
        title, _, rest = changelog.read_text().partition("\n")
        changelog.write_text(f"{title}\n\n## {version}\n\n- Fault-suite release.\n{rest}")
        index = folder / "image" / "site" / "index.html"
        index.write_text(index.read_text().replace("</body>", f"<!-- {version} -->\n</body>", 1))
        shelf = Shelf(self.shelf)
        [recipe] = shelf.recipes([APP])
        assert shelf.build(recipe).passed
        record_as_vetted(shelf, recipe)
        outcome = release(self.shelf, shelf.client, [recipe], shelf.base_tag, say=lambda _: None)
        assert outcome.released == [(APP, version)], outcome.refused
        return version

    def image(self, version: str) -> str:
        """The version's pinned image (`127.0.0.1:PORT/commonshelf/custom-html-app@sha256:…`)."""
        entry = Catalog.load(self.shelf.catalog_path).versions(APP)[version]
        return entry.runtime.services["app"].image

    def serve(self) -> str:
        """Serve public/ on a free loopback port from this process; the URL."""
        server = make_server(self.shelf.public_dir, traffic=self.traffic)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.server = server  # only once serving: `shutdown` waits for serve_forever
        return f"http://127.0.0.1:{server.server_address[1]}"

    def count_from(self) -> None:
        """Count the catalogue requests of the runs started from now (before a fault)."""
        self.traffic.take()
        self.counted, self.runs = [], 0

    def requests_made(self) -> int:
        """Requests the runs made since `count_from`. Each run polls once: the next root
        (404) and timestamp.json; the case's one new release costs the first run four more
        (snapshot, targets, catalog.json and the new version's compose file)."""
        self.counted += [r.path for r in self.traffic.take()]
        polls, made = sum(p.endswith("/timestamp.json") for p in self.counted), len(self.counted)
        assert polls == self.runs and 2 * polls <= made <= 2 * polls + 4, (self.runs, self.counted)
        return made

    # ---- the installation

    def agent(self) -> Agent:
        return Agent(self.home, self.client)

    def record(self) -> Installed:
        return self.agent().record(APP)

    def spec(self) -> tuple[str, int]:
        """The app service's image and Swarm spec version (any change moves the version)."""
        service = self.client.services.get(self.service)
        return swarm.service_image(service), int(service.attrs["Version"]["Index"])

    @property
    def command(self) -> list[str]:
        return [str(COMMAND), "--home", str(self.home), "--json", "run"]

    def run(self, timeout: float = 300) -> tuple[int, list[dict[str, Any]]]:
        """`commonshelf run --json` in a process of its own, as the timer runs it."""
        self.runs += 1
        done = subprocess.run(self.command, capture_output=True, text=True, timeout=timeout)
        try:
            events = json.loads(done.stdout or "[]")
        except json.JSONDecodeError:
            events = []
        assert isinstance(events, list), done.stdout
        if done.returncode == 2:
            events = [{"outcome": "error", "sentence": done.stderr.strip()}]
        return done.returncode, events

    def spawn_run(self, pause_at: str = "") -> subprocess.Popen[str]:
        """`commonshelf run` in a session of its own (its children die with it), optionally
        paused at a step (COMMONSHELF_PAUSE_AT, see installation/volumes.pause_point)."""
        self.runs += 1
        env = {**os.environ, "COMMONSHELF_PAUSE_AT": pause_at} if pause_at else dict(os.environ)
        out, err = subprocess.DEVNULL, subprocess.PIPE
        return subprocess.Popen(
            self.command, stdout=out, stderr=err, text=True, env=env, start_new_session=True
        )

    @staticmethod
    def kill(process: subprocess.Popen[str]) -> None:
        """SIGKILL the agent and what it started (its session), as a power cut would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

    def last_sentence(self) -> str:
        """What `status` says happened last to the app (its own poll is not counted)."""
        self.counted += [r.path for r in self.traffic.take()]
        [status] = [s for s in self.agent().status() if s.app == APP]
        self.traffic.take()
        return status.last

    def serves(self) -> bool:
        url, host = f"http://127.0.0.1:{self.http_port}/healthz", {"Host": f"{APP}.localhost"}
        with contextlib.suppress(requests.RequestException):
            return requests.get(url, headers=host, timeout=5).status_code == 200
        return False

    def assert_serves(self, version: str, timeout: float = 120) -> None:
        """The record names `version`, Swarm runs its image healthy and the proxy serves it."""
        record = self.record()
        assert record.version == version, (record.version, version)
        deployer, wanted = self.agent().deployer(), {self.service: record.images["app"]}
        running = f"{APP} {version} running healthy"
        wait_for(lambda: deployer.running(APP, wanted), timeout, running, every=1)
        wait_for(self.serves, timeout, f"{APP} serving through the proxy", every=0.5)

    def assert_untouched(self, before: tuple[Installed, tuple[str, int], list[str]]) -> None:
        """Nothing changed: the same record, the same Swarm spec, the same backups."""
        record, spec, backups = before
        assert self.record() == record
        assert self.spec() == spec
        assert self.backup_names() == backups
        assert not self.partials()
        assert self.serves()

    def state(self) -> tuple[Installed, tuple[str, int], list[str]]:
        return self.record(), self.spec(), self.backup_names()

    def backup_names(self) -> list[str]:
        return sorted(p.name for p in self.backups.iterdir()) if self.backups.is_dir() else []

    def partials(self) -> list[str]:
        return [n for n in self.backup_names() if n.startswith(".")]

    def holders(self, prefix: str = "") -> list[Any]:
        """Holder containers (volume copies) left on the app's volumes (or `prefix`'s)."""
        # sparse: inspecting a container whose archive is being read waits for the copy to end
        found = self.client.containers.list(all=True, sparse=True, filters={"label": HOLDER_LABEL})
        return [
            c for c in found if c.attrs["Labels"][HOLDER_LABEL].startswith(prefix or self.stack)
        ]

    # ---- the user's data

    def _exec(self, command: str) -> str:
        found = swarm.task_containers(self.client, self.service)
        assert found, f"{self.service} has no running task"
        # the newest: during an update's overlap the old task shares the volume, then stops
        container = max(found, key=lambda c: str(c.attrs.get("Created", "")))
        code, output = container.exec_run(["sh", "-c", command])
        assert code == 0, output
        return str(output.decode())

    def seed(self) -> None:
        """A page and a 3 MB file written into the app's data volume, as a user would."""
        self._exec(
            "echo 'written by the user' > /srv/www/mine.html && "
            f"head -c {BLOB} /dev/urandom > /srv/www/blob.bin"
        )
        self.seeded = self.checksums()
        assert set(self.seeded) == {"mine.html", "blob.bin"}

    def checksums(self) -> dict[str, tuple[str, int]]:
        listing = self._exec(
            "cd /srv/www && for f in mine.html blob.bin; do [ -f $f ] && "
            'echo "$(sha256sum < $f | cut -d" " -f1) $(wc -c < $f) $f"; done; true'
        )
        rows = [line.split() for line in listing.splitlines()]
        return {name: (digest, int(size)) for digest, size, name in rows}

    def lost_bytes(self) -> int:
        """Seeded bytes missing or changed now (read in the running task)."""
        now = self.checksums()
        return sum(kept[1] for name, kept in self.seeded.items() if now.get(name) != kept)

    def resize_home(self, size: int) -> None:
        size = -(-size // 4096) * 4096
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.home)], check=True)

    # ---- teardown

    def close(self) -> None:
        """Remove everything the world made; fail if anything is left."""
        environment.ensure_docker(self.shelf)  # up again, should a case have left it down
        for container in self.holders(self.namespace):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        # both stacks go down at once; remove_namespace then waits for them and removes the rest
        stacks = [self.stack, f"{self.namespace}commonshelf"]
        subprocess.run(["docker", "stack", "rm", *stacks], capture_output=True, check=False)
        for _ in range(10):  # a volume stays busy for a moment after its container went
            remove_namespace(self.client, self.namespace)
            if not namespace_leftovers(self.client, self.namespace):
                break
            time.sleep(1)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        environment.stop_daemon(self.shelf, f"registry-{self.registry_port}")
        shutil.rmtree(self.shelf.registry_dir / self.registry_port, ignore_errors=True)
        for ref in self._refs():
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(ref)
        for _ in range(10):
            if not os.path.ismount(self.home):
                break
            if subprocess.run(["umount", str(self.home)], check=False).returncode != 0:
                time.sleep(1)
        left = namespace_leftovers(self.client, self.namespace) + self._refs()
        if os.path.ismount(self.home):
            left.append(f"mount {self.home}")
        if environment.daemon_pid(self.shelf, f"registry-{self.registry_port}"):
            left.append(f"registry {self.shelf.registry}")
        with socket.socket() as probe:
            if self.server and probe.connect_ex(("127.0.0.1", self.server.server_port)) == 0:
                left.append(f"catalogue server on {self.server.server_port}")
        assert not left, f"the engine fault cases left {left}"

    def _refs(self) -> list[str]:
        """Image references this world made: registry tags and digests, version tags."""
        mine = (f"{self.shelf.registry}/", f"commonshelf/{APP}-app:{self.major}.")
        images = self.client.images.list()
        refs = [r for i in images for r in [*i.tags, *i.attrs.get("RepoDigests", [])]]
        return [ref for ref in refs if ref.startswith(mine)]


def _make(root: Path, settings: Settings, client: docker.DockerClient) -> World:
    """Copy the shelf, start its registry and catalogue, init, install v1 and seed it."""
    shelf_root = root / "shelf"
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
    shutil.copytree(REPO / "shared", shelf_root / "shared", ignore=ignore)
    shutil.copytree(REPO / "recipes" / APP, shelf_root / "recipes" / APP, ignore=ignore)
    (shelf_root / "pyproject.toml").write_text("[project]\nname = 'shelf-under-test'\n")

    def quicker(compose: dict[str, Any]) -> None:  # the same app, judged sooner by Swarm
        compose["services"]["app"]["healthcheck"].update(interval="2s", start_period="2s")
        compose["services"]["app"]["deploy"]["update_config"]["monitor"] = "4s"

    edit_yaml(shelf_root / "recipes" / APP / "compose.yml", quicker)
    shelf = Settings(
        root=shelf_root,
        state_dir=settings.state_dir,
        registry=f"127.0.0.1:{free_port()}",
        catalogue_port=free_port(),
        debian_mirror=settings.debian_mirror,
    )
    home = root / "agent"
    home.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={HOME_SIZE}", "tmpfs", str(home)]
    subprocess.run(mount, check=False)
    namespace, port = f"csf{uuid.uuid4().hex[:6]}-", free_port()
    world = World(shelf, client, home, namespace, port, major=random.randint(100, 899))
    try:
        assert os.path.ismount(home), "could not mount a tmpfs for the installation's home"
        version = world.publish()
        pinned = (shelf.public_dir / "metadata" / "1.root.json").read_bytes()
        world.agent().init(
            world.serve(), pinned, http_port=port, namespace=namespace, channel="testing"
        )
        world.agent().install(APP, version)
        world.assert_serves(version)
        world.seed()
    except BaseException:
        world.close()
        raise
    return world


_shared: list[World] = []


def _close_shared() -> None:
    if _shared:
        _shared.pop().close()


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    settings: Settings,
    docker_client: docker.DockerClient,
) -> Iterator[World]:
    """The shared world, made by the first module that asks and closed after the last one
    of this run importing it (not the catalogue cases' own `world`), or if the run stops."""
    if not _shared:
        _shared.append(_make(tmp_path_factory.mktemp("engine-faults"), settings, docker_client))
        request.config.add_cleanup(_close_shared)
    yield _shared[0]
    items = request.session.items
    mine = [n for n, item in enumerate(items) if getattr(item, "module", None) is request.module]
    later = items[max(mine) + 1 :] if mine else []
    if not any(getattr(getattr(item, "module", None), "world", None) is world for item in later):
        _close_shared()
