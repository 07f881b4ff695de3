"""Channels and revocation end to end over TUF on loopback (no Docker): a repository published
before channels is followed through its full catalogue, and `status` says so; once republished
with channel catalogues, an installation initialised with `--channel stable` sees only the
stable version and one with `--channel testing` sees both; `invoke revoke` marks a version
revoked in a newly signed catalogue that the installation verifies, and refuses bad input with
one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from commonshelf.catalogue.catalog import FULL_TARGET, Catalog, channel_target
from commonshelf.catalogue.contract import AppEntry, VersionEntry
from commonshelf.catalogue.server import serving
from commonshelf.catalogue.signing import Publisher, load_or_create_keys
from commonshelf.ci import channels
from commonshelf.ci.republish import republish, resign_unchanged
from commonshelf.installation import cli
from commonshelf.installation.agent import Agent
from commonshelf.installation.subscription import Subscription
from commonshelf.platform.settings import Settings

from ..entries import version_entry

REPO = Path(__file__).resolve().parents[2]
STABLE, TESTING = "1.0.0+1", "1.1.0+1"
REASON = "loses uploads on restart"


def _entry() -> VersionEntry:
    return version_entry(channel="testing")  # as a release lands every new version


@pytest.fixture
def shelf(tmp_path: Path) -> Iterator[tuple[Settings, str]]:
    """A shelf whose repository was published before channels (only catalog.json), served on
    loopback: web STABLE and TESTING, both still in testing."""
    settings = Settings.load(root=tmp_path / "shelf", env={})
    web = AppEntry(
        title="Web",
        description="A web app",
        category="web",
        versions={STABLE: _entry(), TESTING: _entry()},
    )
    record = Catalog(apps={"web": web}).to_bytes()
    keys = load_or_create_keys(settings.keys_dir, env={})[0]
    Publisher(settings.public_dir, keys).publish({FULL_TARGET: record})
    settings.catalog_path.write_bytes(record)
    with serving(settings.public_dir) as url:
        yield settings, url


def _env(**extra: str) -> dict[str, str]:
    """This environment without any shelf, home or signing key of the machine's own."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("COMMONSHELF_", "INVOKE_"))
    } | extra


def _commonshelf(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("commonshelf")), "--home", str(home), *argv]
    return subprocess.run(
        command, env=_env(), capture_output=True, text=True, check=False, timeout=60
    )


def _invoke(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "invoke", "--search-root", str(REPO), *argv]
    return subprocess.run(
        command,
        cwd=settings.root,
        env=_env(COMMONSHELF_ROOT=str(settings.root)),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _versions(home: Path) -> list[str]:
    shown = _commonshelf(home, "--json", "info", "web")
    assert shown.returncode == 0, shown.stderr
    return [v["version"] for v in json.loads(shown.stdout)["versions"]]


def test_each_installation_sees_its_channel_and_a_revocation(
    shelf: tuple[Settings, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, url = shelf
    root = settings.public_dir / "metadata" / "1.root.json"
    # `commonshelf init` as typed, minus Docker: no Swarm node to pin, no proxy to start
    monkeypatch.setattr(Agent, "local_node", lambda self: "")
    monkeypatch.setattr(Agent, "deploy_proxy", lambda self, catalog, config: None)
    homes = {"stable": tmp_path / "stable", "testing": tmp_path / "testing"}
    for channel, home in homes.items():
        argv = ["--home", str(home), "--json", "init", "--repository", url, "--root", str(root)]
        assert cli.main([*argv, "--channel", channel]) == 0
        said = json.loads(capsys.readouterr().out)
        assert (said["channel"], said["catalogue"]) == (channel, FULL_TARGET)
    # a repository from before channels: followed through its full catalogue, and said so
    assert _versions(homes["stable"]) == [TESTING, STABLE]
    status = _commonshelf(homes["stable"], "status")
    assert status.returncode == 0, status.stderr
    assert "Following channel stable, but the repository publishes no channel catalogues yet" in (
        " ".join(status.stdout.split())
    )

    # promoted through republish: the channel catalogues appear beside catalog.json
    done = republish(settings, channels.promote("web", STABLE))
    assert done.published and done.targets_version == 2
    assert _versions(homes["stable"]) == [STABLE]
    assert _versions(homes["testing"]) == [TESTING, STABLE]
    apps = _commonshelf(homes["stable"], "--json", "apps")
    assert apps.returncode == 0, apps.stderr
    [row] = json.loads(apps.stdout)
    assert (row["latest"], row["channel"]) == (STABLE, "stable")
    status = _commonshelf(homes["testing"], "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip().endswith("Following channel testing.")

    # revoked by the publisher: a newly signed catalogue, verified by the installation
    revoked = _invoke(settings, "revoke", "web", STABLE, "--reason", REASON)
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    assert f"**Web** `web` {STABLE} revoked: {REASON}" in revoked.stdout
    agent = Agent(homes["stable"])
    assert agent.catalog().versions("web")[STABLE].revoked == REASON
    assert agent.catalog_target == "channels/stable/catalog.json"
    trusted = json.loads((homes["stable"] / "tuf" / "metadata" / "targets.json").read_bytes())
    assert trusted["signed"]["version"] == 3
    shown = _commonshelf(homes["stable"], "--json", "info", "web")
    [version] = json.loads(shown.stdout)["versions"]
    assert version["allowed"] == f"was revoked by the publisher ({REASON})"

    # bad input: one line with a fix, and nothing published
    for argv, says in (
        (["revoke", "web", "9.9.9+1", "--reason", "x"], "web has no released version 9.9.9+1"),
        (["revoke", "web", TESTING], "A revocation needs a reason"),
        (["promote", "nope", STABLE], "catalog.json has no app 'nope' (apps: web)"),
    ):
        refused = _invoke(settings, *argv)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and "Fix:" in lines[0], refused.stderr
    assert len(list((settings.public_dir / "metadata").glob("*.targets.json"))) == 3

    # a tampered channel catalogue is refused, never replaced by the full one
    signed = json.loads((settings.public_dir / "metadata" / "3.targets.json").read_bytes())
    digest = signed["signed"]["targets"]["channels/stable/catalog.json"]["hashes"]["sha256"]
    stable = settings.public_dir / "targets" / "channels" / "stable" / f"{digest}.catalog.json"
    stable.write_bytes(stable.read_bytes().replace(b"Web", b"Bad"))
    fresh = tmp_path / "fresh"
    assert cli.main(["--home", str(fresh), "init", "--repository", url, "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "channels/stable/catalog.json from " in err and "does not match its signed hash" in err
    assert not (fresh / "config.json").exists()


def test_a_release_with_nothing_new_signs_the_catalogue_as_recorded(
    shelf: tuple[Settings, str], tmp_path: Path
) -> None:
    """A repository signed before channels gets its channel catalogues from the next release
    even when nothing is new, and a catalog.json changed since its last signing reaches the
    installation; a second such release signs nothing."""
    settings, url = shelf
    keys = load_or_create_keys(settings.keys_dir, env={})[0]
    root = (settings.public_dir / "metadata" / "1.root.json").read_bytes()
    follower = Subscription.create(tmp_path / "tuf", url, root, verify=True)
    assert Catalog.from_bytes(follower.fetch(FULL_TARGET)).versions("web")[STABLE].channel == (
        "testing"
    )
    recorded = channels.promote("web", STABLE)(Catalog.load(settings.catalog_path)).catalog
    assert resign_unchanged(settings, keys, recorded).targets_version == 2
    follower = Subscription.open(tmp_path / "tuf")
    for channel, versions in (("testing", {STABLE, TESTING}), ("stable", {STABLE})):
        view = Catalog.from_bytes(follower.fetch(channel_target(channel)))
        assert set(view.versions("web")) == versions, channel
    full = Catalog.from_bytes(follower.fetch(FULL_TARGET))
    assert full.versions("web")[STABLE].channel == "stable"
    assert resign_unchanged(settings, keys, recorded).targets_version == 2  # signed once
