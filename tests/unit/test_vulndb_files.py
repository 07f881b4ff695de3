"""The readable advisories the vulnerability DB is built from, and the artifact built."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import pytest

from commonshelf.ci import vulndb
from commonshelf.platform.errors import ScanError

from ..conftest import REPO

GOOD = """updated: 2026-11-01
advisories:
  - id: CVE-2099-0001
    package: nginx
    fixed: 99.0.0-1
    severity: CRITICAL
    title: fixture
"""


def test_the_bundled_advisories_load_and_build_the_same_artifact_twice(tmp_path: Path) -> None:
    advisories, built = vulndb.load_advisories(REPO / "shared" / "advisories")
    assert advisories and all(a.vulnerability_id.startswith("CVE-") for a in advisories)
    first = vulndb.build_artifact(advisories, built, tmp_path / "a").read_bytes()
    second = vulndb.build_artifact(advisories, built, tmp_path / "b").read_bytes()
    assert first == second  # same files, same artifact digest: nothing to push again
    with tarfile.open(tmp_path / "a" / "db.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["metadata.json", "trivy.db"]


def test_the_newest_updated_date_is_the_build_time(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(GOOD)
    (tmp_path / "b.yml").write_text(GOOD.replace("2026-11-01", "2026-11-20"))
    advisories, built = vulndb.load_advisories(tmp_path)
    assert len(advisories) == 2 and built.isoformat().startswith("2026-11-20")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (GOOD.replace("    fixed: 99.0.0-1\n", ""), "fixed"),
        (GOOD.replace("updated: 2026-11-01\n", ""), "updated"),
        (GOOD + "    colour: red\n", "colour"),
        ("advisories: [" * 50, "advisory file"),
    ],
)
def test_a_bad_advisory_file_is_one_line_naming_it(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ScanError) as caught:
        vulndb.load_advisories(tmp_path)
    assert time.monotonic() - started < 1
    line = str(caught.value)
    assert "\n" not in line and said in line and "Fix:" in line
    assert "bad.yml" in line or "advisory file" in line


def test_an_unknown_severity_is_refused_when_the_db_is_built(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(GOOD.replace("CRITICAL", "DIRE"))
    advisories, built = vulndb.load_advisories(tmp_path)
    with pytest.raises(ScanError, match="DIRE"):
        vulndb.build_artifact(advisories, built, tmp_path / "out")
