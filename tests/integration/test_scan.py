"""The real trivy binary over a real image, with fixture vulnerability DBs: one scan gives
the JSON report, the SARIF and the CycloneDX SBOM; the same image and DB are not scanned
twice; the policy decides what blocks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import docker

from commonshelf.ci import image_scan, scan, scan_policy
from commonshelf.ci.trivydb import Advisory, write_trivy_db

from ..conftest import REPO

TODAY = dt.date(2026, 11, 27)


def _scan(recipe_image: str, docker_client: docker.DockerClient, cache: Path, store: Path):  # type: ignore[no-untyped-def]
    image_id = docker_client.images.get(recipe_image).id
    return image_scan.scan_image(
        recipe_image, image_id, cache_dir=cache, db=scan.ensure_vuln_db(cache), store=store
    )


def test_one_scan_gives_report_sarif_and_sbom_and_is_not_repeated(
    recipe_image: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    critical = Advisory("nginx", "CVE-2099-0001", "99.0.0-1", "CRITICAL", "fixture: nginx RCE")
    write_trivy_db(tmp_path / "db-a", [critical])
    store = tmp_path / "results"
    first = _scan(recipe_image, docker_client, tmp_path / "db-a", store)
    assert not first.cached
    [light] = [f for f in first.findings if f.package == "nginx-light"]
    assert (light.id, light.fixed, light.severity) == ("CVE-2099-0001", "99.0.0-1", "CRITICAL")
    assert light.installed.startswith("1.22.1")
    sarif = json.loads(first.sarif.read_text())
    assert sarif["version"] == "2.1.0"
    assert "CVE-2099-0001" in {r["ruleId"] for run in sarif["runs"] for r in run["results"]}
    sbom = json.loads(first.sbom.read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    assert "nginx-light" in {c["name"] for c in sbom["components"]}
    assert first.sbom_digest().startswith("sha256:")

    again = _scan(recipe_image, docker_client, tmp_path / "db-a", store)
    assert again.cached and again.findings == first.findings and again.seconds < first.seconds
    # another DB (another digest) is another answer: scanned again
    write_trivy_db(tmp_path / "db-b", [critical, Advisory("zlib", "CVE-2099-0002", "9:9", "LOW")])
    assert not _scan(recipe_image, docker_client, tmp_path / "db-b", store).cached
    assert not list(store.glob(".scan-*"))  # no staging folder left behind


def test_the_policy_blocks_critical_and_fixable_high_but_not_unfixable_high(
    recipe_image: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    write_trivy_db(
        tmp_path / "db",
        [
            Advisory("nginx", "CVE-2099-0010", "99.0.0-1", "HIGH", "fixable"),
            Advisory("nginx", "CVE-2099-0011", "", "HIGH", "no fix yet"),
            Advisory("nginx", "CVE-2000-0001", "1.0.0-1", "CRITICAL", "fixed long ago"),
        ],
    )
    found = _scan(recipe_image, docker_client, tmp_path / "db", tmp_path / "results").findings
    assert "CVE-2000-0001" not in {f.id for f in found}  # the image has the fixed version
    policy = scan_policy.load_policy(REPO / "shared")
    verdict = scan_policy.judge(found, policy, (), TODAY)
    assert {b.finding.id for b in verdict.blocking} == {"CVE-2099-0010"}
    assert not verdict.passed
    assert any("CVE-2099-0010" in line and "99.0.0-1" in line for line in verdict.reasons())


def test_secrets_in_a_folder_are_found(tmp_path: Path) -> None:
    folder = tmp_path / "recipe"
    folder.mkdir()
    (folder / "config.env").write_text("AWS_ACCESS_KEY_ID=AKIA" + "Z7QX3KD4PLMNB2VT\n")
    (folder / "clean.txt").write_text("nothing to see\n")
    findings = scan.scan_secrets(folder, cache_dir=tmp_path / "cache")
    assert [f.target.split(":")[0] for f in findings] == ["config.env"]
    assert findings[0].kind == "secret" and findings[0].severity in ("CRITICAL", "HIGH")
