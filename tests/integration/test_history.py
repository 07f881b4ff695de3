"""Released versions on a machine that never published them: the pipeline rebuilds each one
from the commit catalog.json records, so custom-html's upgrade check runs from the real
released 1.0.0 to 1.1.0 on seeded data, on a fresh clone like CI's."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import semver

from commonshelf.catalogue.catalog import Catalog, released_records
from commonshelf.ci.evidence import EvidenceStore
from commonshelf.ci.history import needs_rebuild
from commonshelf.ci.levels import MAX_LEVEL
from commonshelf.ci.pipeline import open_shelf, run_pipeline, vet
from commonshelf.ci.rehearsal import Rehearsal
from commonshelf.platform.errors import ReleaseError
from commonshelf.platform.settings import Settings

from ..conftest import REPO, shelf_at
from .conftest import assert_rehearsals_gone

APP = "custom-html"
# five minutes on 2 cores; the matrix's upgrade check covers the same code from one rebuilt
# version per change, so the whole rebuild runs in the scheduled job (`nox -s nightly`)
pytestmark = pytest.mark.nightly


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
    clone: Settings, docker_client: docker.DockerClient, rehearsals: list[Rehearsal]
) -> None:
    committed = Catalog.load(clone.catalog_path)
    history = [
        r
        for r in released_records(clone.catalog_path.read_bytes(), str(clone.catalog_path))
        if r.app == APP
    ]
    assert len(history) >= 2, "catalog.json should hold two released versions of custom-html"
    assert needs_rebuild(clone)
    releases_md = clone.releases_path.read_text()

    # CI's gate (`invoke vet`) needs the released version for the upgrade check: it
    # rebuilds the history first, then finds the current content already vetted
    shelf = open_shelf(clone)
    assert vet(shelf, shelf.recipes([APP]))
    rows = [(r.recipe, r.stage) for r in shelf.results]
    assert (f"{APP} {history[0].version} (released)", "test") in rows
    assert (f"{APP} {history[-1].version} (released)", "test") in rows
    # the pipeline after it has nothing left to do but publish what is there
    report = run_pipeline(clone, [APP], install=None)
    assert report.passed, [(s.recipe, s.stage, s.summary) for s in report.stages]
    [current] = shelf.recipes([APP])
    already_released = current.version in committed.versions(APP)
    if already_released:
        assert report.release.unchanged == [(APP, current.version)]
    rebuilt = Catalog.load(clone.catalog_path)
    assert sorted(rebuilt.versions(APP)) == sorted(committed.versions(APP))
    for old in history:
        entry = rebuilt.versions(APP)[old.version]
        assert entry.commit == old.commit and entry.content_hash == old.content_hash
        assert entry.released == old.released and entry.rebuilt
        assert entry.vetting.level == MAX_LEVEL
        assert all(c.status in ("passed", "n/a") for c in entry.vetting.checks.values())
    if already_released:
        assert clone.releases_path.read_text() == releases_md  # rebuilding is no new release
    assert (clone.public_dir / "metadata" / "1.root.json").is_file()

    # the newest released version's evidence: its upgrade check started from the one before,
    # on Swarm behind the proxy, probed every 100 ms without a failed request
    newest, previous = history[-1], history[-2]
    evidence = EvidenceStore(clone.evidence_dir).load(APP, newest.version, newest.content_hash)
    gate = evidence.gates.test
    assert gate is not None
    upgrade = next(c for c in gate.matrix if c.check == "upgrade")
    assert upgrade.status == "passed", upgrade
    assert f"{previous.version} → {newest.version} on Swarm: seeded data kept" in upgrade.detail
    proof = gate.upgrade
    assert proof is not None and proof.from_version == previous.version
    assert proof.probes > 50 and proof.failed == 0, proof
    # ... and the catalogue says so to installations
    assert rebuilt.versions(APP)[newest.version].vetting.upgrade == proof
    assert rebuilt.versions(APP)[history[0].version].vetting.upgrade is None  # first release
    assert evidence.tools["trivy"] and evidence.tools["docker_engine"]
    assert not needs_rebuild(clone, [APP])
    assert_rehearsals_gone(docker_client, rehearsals)


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
        run_pipeline(clone, [APP], install=None)

    assert clone.catalog_path.read_bytes() == before
    assert not clone.public_dir.exists()
