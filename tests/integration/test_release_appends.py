"""A release from a fresh clone, given the published repository (over HTTP on loopback) and
the keys, publishes version N+1 of the same chain, which an installation holding version N
accepts; a repository that does not chain to the pinned root is refused before anything is
written."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Timestamp

from commonshelf.catalogue import origin, reproducible
from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.server import serving
from commonshelf.catalogue.signing import Publisher, SigningKeys, load_or_create_keys
from commonshelf.ci.promote import release
from commonshelf.ci.stages import Shelf
from commonshelf.installation.subscription import Subscription
from commonshelf.platform.errors import TrustError
from commonshelf.platform.settings import Settings

from .conftest import APP, record_as_vetted


def _fresh_clone(tmp_path: Path, url: str, anchor: bytes) -> Settings:
    """A checkout as CI has it: the committed pinned root, no public/, the published URL."""
    root = tmp_path / "clone"
    (root / "shared" / "trust").mkdir(parents=True)
    (root / "shared" / "trust" / "root.json").write_bytes(anchor)
    return Settings.load(root, env={"COMMONSHELF_PUBLISHED_URL": url})


def _upload(public: Path, host: Path) -> None:
    """What the release job's publish step does: every file of public/ onto the static host."""
    shutil.copytree(public, host, dirs_exist_ok=True)


def _held_timestamp(home: Path) -> int:
    return Metadata[Timestamp].from_file(str(home / "metadata" / "timestamp.json")).signed.version


def test_a_fresh_clone_publishes_the_next_version_of_the_same_chain(tmp_path: Path) -> None:
    host = tmp_path / "host"  # the static host's web root
    keys: SigningKeys = load_or_create_keys(tmp_path / "keys", env={})[0]
    for n in (1, 2, 3):
        Publisher(host, keys).publish({"catalog.json": b'{"release": %d}' % n})
    anchor = (host / "metadata" / "1.root.json").read_bytes()
    with serving(host) as url:
        home = tmp_path / "installation"
        held = Subscription.create(home, url, anchor, verify=True)
        assert held.fetch("catalog.json") == b'{"release": 3}'
        assert _held_timestamp(home) == 3

        settings = _fresh_clone(tmp_path, url, anchor)
        assert not settings.public_dir.exists()
        got = origin.sync(settings)
        assert got is not None and got.catalog == b'{"release": 3}'
        result = Publisher(settings.public_dir, keys).publish({"catalog.json": b'{"release": 4}'})
        assert (result.root_version, result.targets_version, result.timestamp_version) == (1, 4, 4)
        assert (settings.public_dir / "metadata" / "1.root.json").read_bytes() == anchor
        _upload(settings.public_dir, host)

        assert Subscription.open(home).fetch("catalog.json") == b'{"release": 4}'
        assert _held_timestamp(home) == 4
        # and an installation started today from the same pinned root gets there too
        fresh = Subscription.create(tmp_path / "new-installation", url, anchor, verify=True)
        assert fresh.fetch("catalog.json") == b'{"release": 4}'


def test_a_repository_that_does_not_chain_to_the_pinned_root_is_refused_over_http(
    tmp_path: Path,
) -> None:
    ours = load_or_create_keys(tmp_path / "keys", env={})[0]
    Publisher(tmp_path / "ours", ours).publish({"catalog.json": b"ours"})
    theirs = load_or_create_keys(tmp_path / "their-keys", env={})[0]
    Publisher(tmp_path / "theirs", theirs).publish({"catalog.json": b"theirs"})
    anchor = (tmp_path / "ours" / "metadata" / "1.root.json").read_bytes()
    with serving(tmp_path / "theirs") as url:
        settings = _fresh_clone(tmp_path, url, anchor)
        with pytest.raises(TrustError, match=rf"{url} does not chain to the pinned root"):
            origin.sync(settings)
    assert not settings.public_dir.exists()


def test_the_release_job_from_a_fresh_clone_appends(
    workspace: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`release()` itself (what `invoke release` runs) in a checkout without public/, given
    the published URL and the keys: custom-html lands in version 3 of the published chain,
    with a catalog.json dated by the source and free of this machine's paths."""
    host = tmp_path / "host"
    keys = load_or_create_keys(workspace.keys_dir, env={})[0]  # the CI secrets, as files
    for n in (1, 2):
        empty = Catalog(generated=f"2026-01-0{n}T00:00:00Z")
        Publisher(host, keys).publish({"catalog.json": empty.to_bytes()})
    anchor = (host / "metadata" / "1.root.json").read_bytes()
    (workspace.shared_dir / "trust").mkdir()
    (workspace.shared_dir / "trust" / "root.json").write_bytes(anchor)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
    shelf = Shelf(workspace)
    [recipe] = shelf.recipes([APP])
    assert shelf.build(recipe).passed
    record_as_vetted(shelf, recipe)
    with serving(host) as url:
        home = tmp_path / "installation"
        Subscription.create(home, url, anchor, verify=True).fetch("catalog.json")
        assert _held_timestamp(home) == 2
        assert not workspace.public_dir.exists()
        clone = replace(workspace, published_url=url)
        said: list[str] = []
        outcome = release(clone, shelf.client, [recipe], shelf.base_tag, say=said.append)
        assert said[:2] == [
            f"Verifying the published repository at {url} against the pinned root "
            "shared/trust/root.json",
            "Extending the published repository (root v1, timestamp v2, targets v2, "
            "1 target file(s))",
        ], said
        assert outcome.released == [(APP, recipe.version)], outcome.refused
        assert outcome.targets_version == 3
        assert (workspace.public_dir / "metadata" / "1.root.json").read_bytes() == anchor
        _upload(workspace.public_dir, host)
        fetched = Subscription.open(home).fetch("catalog.json")
    assert _held_timestamp(home) == 3
    assert workspace.catalog_path.read_bytes() == fetched  # the copy to commit
    catalog = Catalog.from_bytes(fetched)
    assert catalog.latest(APP) == recipe.version
    assert catalog.generated == catalog.apps[APP].versions[recipe.version].released
    assert catalog.generated == "2026-09-21T14:13:20Z"  # SOURCE_DATE_EPOCH, not the clock
    assert reproducible.machine_local(catalog, also=(workspace.root, workspace.state_dir)) == []
