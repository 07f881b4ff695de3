"""The real trivy binary over a real image, with fixture vulnerability DBs."""

from __future__ import annotations

from pathlib import Path

from commonshelf.ci import scan
from commonshelf.ci.trivydb import Advisory, write_trivy_db


def test_empty_offline_db_passes_and_says_so(recipe_image: str, tmp_path: Path) -> None:
    db = scan.ensure_vuln_db(tmp_path)
    assert not db.has_advisories and "empty offline DB" in db.describe()
    report = scan.scan_image(recipe_image, cache_dir=tmp_path)
    assert report.passed and not [f for f in report.findings if f.kind == "vulnerability"]
    assert report.trivy_version


def test_critical_advisory_for_the_images_nginx_fails_the_gate(
    recipe_image: str, tmp_path: Path
) -> None:
    write_trivy_db(
        tmp_path,
        [
            Advisory(
                "nginx", "CVE-2099-0001", "99.0.0-1", "CRITICAL", "fixture: remote code execution"
            )
        ],
    )
    report = scan.scan_image(recipe_image, cache_dir=tmp_path, fail_on="CRITICAL")
    assert not report.passed
    blocking = {(f.id, f.target.rsplit(": ", 1)[1]) for f in report.blocking}
    assert ("CVE-2099-0001", "nginx-light") in blocking
    assert all(f.fixed == "99.0.0-1" and f.installed.startswith("1.22.1") for f in report.blocking)


def test_high_advisory_does_not_fail_a_critical_gate(recipe_image: str, tmp_path: Path) -> None:
    write_trivy_db(tmp_path, [Advisory("nginx", "CVE-2099-0002", "99.0.0-1", "HIGH")])
    report = scan.scan_image(recipe_image, cache_dir=tmp_path, fail_on="CRITICAL")
    assert report.passed and report.counts["HIGH"] >= 1
    assert not scan.scan_image(recipe_image, cache_dir=tmp_path, fail_on="HIGH").passed


def test_fixed_advisory_is_not_reported(recipe_image: str, tmp_path: Path) -> None:
    write_trivy_db(tmp_path, [Advisory("nginx", "CVE-2000-0001", "1.0.0-1", "CRITICAL")])
    assert scan.scan_image(recipe_image, cache_dir=tmp_path).passed


def test_secrets_in_a_folder_are_found(tmp_path: Path) -> None:
    folder = tmp_path / "recipe"
    folder.mkdir()
    (folder / "config.env").write_text("AWS_ACCESS_KEY_ID=AKIA" + "Z7QX3KD4PLMNB2VT\n")
    (folder / "clean.txt").write_text("nothing to see\n")
    findings = scan.scan_secrets(folder, cache_dir=tmp_path / "cache")
    assert [f.target.split(":")[0] for f in findings] == ["config.env"]
    assert findings[0].kind == "secret" and findings[0].severity in ("CRITICAL", "HIGH")


def test_sbom_is_cyclonedx_with_nginx(recipe_image: str, tmp_path: Path) -> None:
    out = tmp_path / "sbom.json"
    digest = scan.sbom_image(recipe_image, cache_dir=tmp_path, out=out)
    text = out.read_text()
    assert digest.startswith("sha256:") and '"bomFormat": "CycloneDX"' in text
    assert '"name": "nginx-light"' in text
