"""A poll with nothing new costs two small requests, counted at a real HTTP server.

The repository is published with real signatures (`Publisher`) and served by the same
handler the demo's catalogue server runs (`commonshelf.catalogue.server`), which records
every response it sends: path, status, header and body bytes. An installation keeps its
verified metadata and targets, so after its first poll it asks only for the next root
version (404) and `timestamp.json`, and downloads a target only when its signed hash moved.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Timestamp
from tuf.api.serialization.json import JSONSerializer

from commonshelf.catalogue.server import Response, Traffic, ensure_catalogue_server, serving
from commonshelf.catalogue.signing import Publisher, SigningKeys, load_or_create_keys
from commonshelf.installation.subscription import Subscription
from commonshelf.platform import environment
from commonshelf.platform.errors import TrustError
from commonshelf.platform.settings import Settings

from ..conftest import free_port

CATALOG = "catalog.json"
KIB = 1024


def catalogue(version: int) -> bytes:
    """A catalogue-sized target (~40 KiB): downloading it again could not hide under 1 KiB."""
    apps = {f"app-{n}": {"title": f"App {n}", "version": f"{version}.0.0"} for n in range(800)}
    return json.dumps({"schema": 2, "apps": apps}, indent=2).encode()


@dataclass
class Repo:
    url: str
    public: Path
    keys: SigningKeys
    traffic: Traffic

    @property
    def root(self) -> bytes:
        return (self.public / "metadata" / "1.root.json").read_bytes()

    def publish(self, data: bytes) -> None:
        Publisher(self.public, self.keys).publish({CATALOG: data})

    def asked(self) -> list[tuple[str, int]]:
        return [(r.path, r.status) for r in self.traffic.take()]


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    public = tmp_path / "public"
    keys = load_or_create_keys(tmp_path / "keys", env={})[0]
    Publisher(public, keys).publish({CATALOG: catalogue(1)})
    traffic = Traffic()
    with serving(public, traffic) as url:
        yield Repo(url, public, keys, traffic)


def _poll(home: Path) -> bytes:
    """What a command does: open the subscription, refresh once, read the catalogue."""
    subscription = Subscription.open(home)
    subscription.refresh()
    return subscription.fetch(CATALOG)


def _sent(responses: list[Response]) -> tuple[int, int]:
    """(body bytes, header + body bytes) of some responses."""
    body = sum(r.body_bytes for r in responses)
    return body, body + sum(r.header_bytes for r in responses)


# what a poll with nothing new asks (the repository is at root version 1)
NOTHING_NEW = [("/metadata/2.root.json", 404), ("/metadata/timestamp.json", 200)]


def test_a_poll_with_nothing_new_costs_two_small_requests(repo: Repo, tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = Subscription.create(home, repo.url, repo.root, verify=True)
    assert first.fetch(CATALOG) == catalogue(1)
    first_poll = repo.traffic.take()
    assert [r.path.split("/")[1] for r in first_poll].count("targets") == 1
    assert len(first_poll) == 5  # 2.root (404), timestamp, snapshot, targets, the catalogue

    # the next command: a new object on the same home
    assert _poll(home) == catalogue(1)
    second = repo.traffic.take()
    assert [(r.path, r.status) for r in second] == NOTHING_NEW
    body, total = _sent(second)
    assert body < KIB and total < KIB, second  # headers included, still under 1 KiB
    assert (home / "targets" / CATALOG).read_bytes() == catalogue(1)

    # a new catalogue is seen by the next poll, downloaded once, then held again
    repo.publish(catalogue(2))
    assert _poll(home) == catalogue(2)
    paths = [path for path, _ in repo.asked()]
    assert paths[:4] == [
        "/metadata/2.root.json",
        "/metadata/timestamp.json",
        "/metadata/2.snapshot.json",
        "/metadata/2.targets.json",
    ]
    assert len(paths) == 5 and paths[4].startswith("/targets/")
    assert paths[4].endswith(f".{CATALOG}")
    assert (home / "targets" / CATALOG).read_bytes() == catalogue(2)
    assert _poll(home) == catalogue(2)
    assert repo.asked() == NOTHING_NEW


def test_one_subscription_refreshes_once_unless_forced(repo: Repo, tmp_path: Path) -> None:
    home = tmp_path / "home"
    Subscription.create(home, repo.url, repo.root).fetch(CATALOG)
    repo.traffic.take()
    subscription = Subscription.open(home)
    assert not subscription.refreshed
    subscription.refresh()
    assert subscription.refreshed
    assert len(repo.traffic.take()) == 2
    for _ in range(3):  # one command reading the catalogue many times
        subscription.refresh()
        assert subscription.fetch(CATALOG) == catalogue(1)
    assert repo.asked() == []
    # what it verified is what it serves until forced: one command sees one state
    repo.publish(catalogue(2))
    assert subscription.fetch(CATALOG) == catalogue(1)
    assert repo.asked() == []
    subscription.refresh(force=True)
    assert subscription.fetch(CATALOG) == catalogue(2)
    assert len(repo.asked()) == 5


def test_a_fetch_without_refresh_refreshes_once(repo: Repo, tmp_path: Path) -> None:
    home = tmp_path / "home"
    Subscription.create(home, repo.url, repo.root).fetch(CATALOG)
    repo.traffic.take()
    subscription = Subscription.open(home)
    assert subscription.fetch(CATALOG) == catalogue(1)
    assert subscription.fetch(CATALOG) == catalogue(1)
    assert repo.asked() == NOTHING_NEW


def test_a_re_signed_timestamp_alone_still_costs_two_requests(repo: Repo, tmp_path: Path) -> None:
    """The release job re-signs the timestamp on every run; the snapshot it names is held."""
    home = tmp_path / "home"
    Subscription.create(home, repo.url, repo.root).fetch(CATALOG)
    repo.traffic.take()
    path = repo.public / "metadata" / "timestamp.json"
    timestamp = Metadata[Timestamp].from_file(str(path))
    timestamp.signed.version += 1
    timestamp.sign(repo.keys.signers["timestamp"])
    path.write_bytes(timestamp.to_bytes(JSONSerializer(compact=False)))
    assert _poll(home) == catalogue(1)
    assert repo.asked() == NOTHING_NEW
    held = Metadata[Timestamp].from_file(str(home / "metadata" / "timestamp.json"))
    assert held.signed.version == timestamp.signed.version


def test_a_changed_local_copy_is_not_trusted(repo: Repo, tmp_path: Path) -> None:
    """A held target is reused only when its bytes match the signed hash; otherwise it is
    downloaded again and verified before it replaces the local copy."""
    home = tmp_path / "home"
    Subscription.create(home, repo.url, repo.root).fetch(CATALOG)
    repo.traffic.take()
    held = home / "targets" / CATALOG
    held.write_bytes(catalogue(1).replace(b"App 1", b"App X"))  # same length, other bytes
    assert _poll(home) == catalogue(1)
    paths = [path for path, _ in repo.asked()]
    assert paths[:2] == [path for path, _ in NOTHING_NEW]
    assert len(paths) == 3 and paths[2].endswith(f".{CATALOG}")
    assert held.read_bytes() == catalogue(1)


def test_a_tampered_new_target_is_refused_and_the_last_good_copy_kept(
    repo: Repo, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    Subscription.create(home, repo.url, repo.root).fetch(CATALOG)
    repo.publish(catalogue(2))
    [served] = [
        p for p in (repo.public / "targets").glob(f"*.{CATALOG}") if p.read_bytes() == catalogue(2)
    ]
    served.write_bytes(catalogue(3))  # same length: only the hash tells
    with pytest.raises(TrustError, match=r"catalog\.json from .* does not match its signed hash"):
        _poll(home)
    assert (home / "targets" / CATALOG).read_bytes() == catalogue(1)


def test_the_server_answers_errors_with_one_short_line(repo: Repo) -> None:
    """No HTML error pages and no folder listings: what a poll's 404 costs is a few bytes."""
    for path in ("/metadata/99.root.json", "/metadata/", "/metadata", "/../keys/root.pem"):
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{repo.url}{path}", timeout=5)
        assert answer.value.code == 404
        body = answer.value.read()
        assert body == b"404 File not found\n"
        assert answer.value.headers["Content-Type"] == "text/plain; charset=utf-8"
    request = urllib.request.Request(f"{repo.url}/metadata/timestamp.json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=5)
    assert answer.value.code == 501 and len(answer.value.read()) < 64
    with urllib.request.urlopen(f"{repo.url}/metadata/timestamp.json", timeout=5) as ok:
        assert ok.read() == (repo.public / "metadata" / "timestamp.json").read_bytes()
        assert "Python" not in ok.headers["Server"]


def test_the_demo_catalogue_server_runs_the_same_handler(tmp_path: Path) -> None:
    """`ensure_catalogue_server` starts `python -m commonshelf.catalogue.server` as a daemon
    (its own state folder here, so the machine's demo server is not touched)."""
    shelf = Settings(
        root=tmp_path / "shelf",
        state_dir=tmp_path / "state",
        registry="127.0.0.1:5000",
        catalogue_port=free_port(),
    )
    keys = load_or_create_keys(tmp_path / "keys", env={})[0]
    Publisher(shelf.public_dir, keys).publish({CATALOG: catalogue(1)})
    name = f"catalogue-{shelf.catalogue_port}"
    try:
        url = ensure_catalogue_server(shelf)
        pid = environment.daemon_pid(shelf, name)
        assert pid is not None
        assert ensure_catalogue_server(shelf) == url  # already serving: the same process
        assert environment.daemon_pid(shelf, name) == pid
        home = tmp_path / "home"
        root = (shelf.public_dir / "metadata" / "1.root.json").read_bytes()
        assert Subscription.create(home, url, root).fetch(CATALOG) == catalogue(1)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{url}/metadata/2.root.json", timeout=5)
        assert answer.value.read() == b"404 File not found\n"
        assert _poll(home) == catalogue(1)
    finally:
        environment.stop_daemon(shelf, name)
    log = (shelf.logs_dir / f"{name}.log").read_text()
    assert '"GET /metadata/timestamp.json HTTP/1.1" 200' in log


def test_the_agents_unattended_run_with_nothing_new_costs_two_small_requests(
    tmp_path: Path,
) -> None:
    """`commonshelf run` as the timer runs it: after the first poll, a run with nothing new
    asks for the next root and the timestamp only, under 1 KiB with headers."""
    from commonshelf.catalogue.catalog import Catalog
    from commonshelf.installation import cli
    from commonshelf.installation.state import InstallationConfig, write_record

    public = tmp_path / "public"
    keys = load_or_create_keys(tmp_path / "keys", env={})[0]
    Publisher(public, keys).publish({CATALOG: Catalog().to_bytes()})
    traffic = Traffic()
    home = tmp_path / "agent"
    with serving(public, traffic) as url:
        root = (public / "metadata" / "1.root.json").read_bytes()
        Subscription.create(home / "tuf", url, root)
        write_record(home / "config.json", InstallationConfig(repository=url))
        traffic.take()
        assert cli.main(["--home", str(home), "run"]) == 0  # the first poll downloads
        assert any(r.path.endswith(CATALOG) for r in traffic.take())
        assert cli.main(["--home", str(home), "run"]) == 0
        second = traffic.take()
    assert [(r.path, r.status) for r in second] == [
        ("/metadata/2.root.json", 404),
        ("/metadata/timestamp.json", 200),
    ]
    assert _sent(second)[1] < KIB, _sent(second)
