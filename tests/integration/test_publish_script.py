"""`ci/publish.sh`, which the forge workflows run after each signing task: it uploads
public/ (here to a folder, with the same rsync it uses over SSH) so that the copy served is a
repository an installation verifies with real python-tuf signatures, the timestamp is
replaced only after everything it names is there, nothing is deleted and no temporary file
goes up."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from commonshelf.catalogue.server import serving
from commonshelf.catalogue.signing import Publisher, load_or_create_keys
from commonshelf.installation.subscription import Subscription
from commonshelf.platform.fsutil import write_bytes_atomic

from ..conftest import debian_command

REPO = Path(__file__).resolve().parents[2]
CATALOG = "catalog.json"


def publish(shelf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(shelf / "ci" / "publish.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def shelf(tmp_path: Path) -> Path:
    debian_command("rsync")  # (the runner needs it too)
    root = tmp_path / "shelf"
    (root / "ci").mkdir(parents=True)
    shutil.copy(REPO / "ci" / "publish.sh", root / "ci" / "publish.sh")
    return root


def test_the_uploaded_copy_is_a_repository_installations_verify(
    shelf: Path, tmp_path: Path
) -> None:
    public, site = shelf / "public", tmp_path / "site"
    refused = publish(shelf, str(site))
    assert refused.returncode == 2 and "Fix: run invoke release first" in refused.stderr
    assert publish(shelf).returncode == 2  # no destination: a usage line, not a traceback

    keys = load_or_create_keys(tmp_path / "keys", env={})[0]
    Publisher(public, keys).publish({CATALOG: b'{"release": 1}'})
    write_bytes_atomic(public / "index.html", b"<!DOCTYPE html><title>1</title>\n")
    first = publish(shelf, str(site))
    assert first.returncode == 0, first.stderr
    assert (site / "index.html").read_bytes() == (public / "index.html").read_bytes()

    with serving(site) as url:
        root = (site / "metadata" / "1.root.json").read_bytes()
        home = tmp_path / "installation"
        assert Subscription.create(home, url, root, verify=True).fetch(CATALOG) == (
            b'{"release": 1}'
        )

        # the next release, with a publish's leftover temporary file beside it
        Publisher(public, keys).publish({CATALOG: b'{"release": 2}'})
        write_bytes_atomic(public / "metadata" / ".timestamp.json.x.tmp", b"half")
        second = publish(shelf, str(site))
        assert second.returncode == 0, second.stderr
        subscription = Subscription.open(home)
        subscription.refresh()
        assert subscription.fetch(CATALOG) == b'{"release": 2}'

    sent = [line for line in second.stdout.splitlines() if line.startswith(">f")]
    names = [line.split()[-1] for line in sent]
    assert names[-1] == "timestamp.json", sent  # replaced after all it names is there
    assert any(name.endswith("2.snapshot.json") for name in names[:-1]), sent
    assert any(name.endswith(f".{CATALOG}") for name in names[:-1]), sent
    assert len(list((site / "targets").glob(f"*.{CATALOG}"))) == 2  # nothing deleted
    assert not list(site.rglob(".*")), "no hidden temporary file is uploaded"
