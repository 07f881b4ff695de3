"""Released versions on a machine that never published them: the pipeline rebuilds each one
from the commit catalog.json records, so custom-html's upgrade check runs from the real
released 1.0.0 to 1.1.0 on seeded data, on a fresh clone like CI's."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import semver

from commonshelf.catalogue.catalog import Catalog
from commonshelf.ci.evidence import EvidenceStore
from commonshelf.ci.history import needs_rebuild, released_versions
from commonshelf.ci.matrix import MAX_LEVEL
from commonshelf.ci.pipeline import Shelf, run_pipeline, vet
from commonshelf.platform.errors import ReleaseError
from commonshelf.platform.settings import Settings

from ..conftest import REPO, shelf_at

APP = "custom-html"


@pytest.fixture
def clone(tmp_path: Path, settings: Settings) -> Iterator[Settings]:
    """A clean clone of this repository's HEAD (no public/, keys or evidence)."""
    shallow = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--is-shallow-repository"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shallow.stdout.strip() == "true":
        pytest.skip("a shallow clone lacks the commits released versions are rebuilt from")
    root = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    yield from shelf_at(root, settings)


def test_released_versions_are_rebuilt_and_the_upgrade_runs_between_them(
    clone: Settings,
) -> None:
    committed = Catalog.load(clone.catalog_path)
    history = [r for r in released_versions(committed) if r.app == APP]
    assert len(history) >= 2, "catalog.json should hold two released versions of custom-html"
    assert needs_rebuild(clone)
    releases_md = clone.releases_path.read_text()

    # CI's gate (`invoke vet`) needs the released version for the upgrade check: it
    # rebuilds the history first, then finds the current content already vetted
    shelf = Shelf(clone)
    assert vet(shelf, shelf.recipes())
    rows = [(r.recipe, r.stage) for r in shelf.results]
    assert (f"{APP} {history[0].version} (released)", "test") in rows
    assert (f"{APP} {history[-1].version} (released)", "test") in rows
    # the pipeline after it has nothing left to do but publish what is there
    report = run_pipeline(clone, install=None)
    assert report.passed, [(s.recipe, s.stage, s.summary) for s in report.stages]
    [current] = shelf.recipes([APP])
    already_released = current.version in committed.versions(APP)
    if already_released:
        assert report.release.unchanged == [(APP, current.version)]
    rebuilt = Catalog.load(clone.catalog_path)
    assert sorted(rebuilt.versions(APP)) == sorted(committed.versions(APP))
    for old in history:
        entry = rebuilt.versions(APP)[old.version]
        assert entry["commit"] == old.commit and entry["content_hash"] == old.content_hash
        assert entry["released"] == old.released and entry["rebuilt"]
        assert entry["level"] == MAX_LEVEL
        assert all(status in ("passed", "n/a") for status in entry["checks"].values())
    if already_released:
        assert clone.releases_path.read_text() == releases_md  # rebuilding is no new release
    assert (clone.public_dir / "metadata" / "1.root.json").is_file()

    # the newest released version's evidence: its upgrade check started from the one before
    newest, previous = history[-1], history[-2]
    evidence = EvidenceStore(clone.evidence_dir).load(APP, newest.version, newest.content_hash)
    upgrade = next(c for c in evidence.gates["test"]["matrix"] if c["check"] == "upgrade")
    assert upgrade["status"] == "passed"
    assert f"{previous.version} → {newest.version}: seeded data kept" in upgrade["detail"]
    assert evidence.tools["trivy"] and evidence.tools["docker_engine"]
    assert not needs_rebuild(clone)


def test_a_catalogue_that_does_not_match_its_commits_is_refused_and_kept(
    clone: Settings,
) -> None:
    raw = json.loads(clone.catalog_path.read_text())
    versions = raw["apps"][APP]["versions"]
    oldest = min(versions, key=semver.Version.parse)
    versions[oldest]["content_hash"] = "0" * 64
    clone.catalog_path.write_text(json.dumps(raw, indent=2))
    before = clone.catalog_path.read_bytes()

    with pytest.raises(ReleaseError, match=r"catalog\.json says 000000000000 was released"):
        run_pipeline(clone, install=None)

    assert clone.catalog_path.read_bytes() == before
    assert not clone.public_dir.exists()
