"""The scan gate over one recipe: its images, Dockerfiles and compose file, judged by policy.

Each image goes through trivy once (`image_scan`, cached by image and DB digest); the
recipe's Dockerfiles and compose file are checked for misconfigurations; then the policy
(`shared/policy/scan.yml`) and the recipe's waivers (`.trivyignore.yaml`) decide what
blocks. The JSON report, SARIF and SBOM of each image are kept beside the evidence
record, where the release job takes the SBOMs from.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from commonshelf.ci import image_scan, scan, scan_policy
from commonshelf.ci.evidence import BuiltImage, EvidenceStore, ScanGate
from commonshelf.platform.fsutil import write_bytes_atomic
from commonshelf.recipes.model import Recipe

FINDINGS_KEPT = 200  # findings copied into the evidence record (the reports hold them all)


@dataclass(frozen=True)
class RecipeScan:
    gate: ScanGate
    images: list[tuple[str, image_scan.ImageScan]]
    verdict: scan_policy.Verdict


def _keep(scanned: image_scan.ImageScan, reports: Path, service: str) -> None:
    """Copy an image's three files beside the evidence record (atomically each)."""
    for source, suffix in (
        (scanned.report, ".json"),
        (scanned.sarif, ".sarif"),
        (scanned.sbom, ".cdx.json"),
    ):
        write_bytes_atomic(reports / f"{service}{suffix}", source.read_bytes())


def _summary(counts: Mapping[str, int], verdict: scan_policy.Verdict, db: scan.VulnDb) -> str:
    text = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()) if n) or "no findings"
    if verdict.blocking:
        text += f"; {len(verdict.blocking)} blocking"
    if verdict.waived:
        text += f"; {len(verdict.waived)} waived"
    if verdict.excepted:
        text += f"; {len(verdict.excepted)} excepted by policy"
    if not db.has_advisories:
        text += " (EMPTY vulnerability DB allowed: vulnerabilities unchecked)"
    return text


def scan_recipe(
    recipe: Recipe,
    built: Mapping[str, BuiltImage],
    *,
    cache_dir: Path,
    db: scan.VulnDb,
    scan_store: Path,
    evidence: EvidenceStore,
    content_hash: str,
    shared_dir: Path,
    today: dt.date | None = None,
) -> RecipeScan:
    """Scan everything the recipe ships and judge it; the gate to record."""
    policy = scan_policy.load_policy(shared_dir)
    waivers = scan_policy.load_waivers(recipe.path)
    reports = evidence.reports(recipe.name, content_hash)
    shutil.rmtree(reports, ignore_errors=True)  # files of an earlier scan of this content
    images: list[tuple[str, image_scan.ImageScan]] = []
    findings: list[tuple[str, scan.Finding]] = []
    for service, image in sorted(built.items()):
        scanned = image_scan.scan_image(
            image.ref, image.id, cache_dir=cache_dir, db=db, store=scan_store
        )
        _keep(scanned, reports, service)
        images.append((service, scanned))
        findings += [(service, finding) for finding in scanned.findings]
    findings += [("", f) for f in scan_policy.dockerfile_findings(recipe, cache_dir)]
    findings += [("", f) for f in scan_policy.compose_findings(recipe)]
    verdict = scan_policy.judge(findings, policy, waivers, today or dt.date.today())
    counts: dict[str, int] = {}
    for _, finding in findings:
        severity = finding.severity if finding.severity in scan.SEVERITIES else "UNKNOWN"
        counts[severity] = counts.get(severity, 0) + 1
    blocking, waived = scan_policy.for_catalogue(verdict)
    gate = ScanGate(
        passed=verdict.passed,
        summary=_summary(counts, verdict, db),
        counts=counts,
        fail_on=policy.describe(),
        vuln_db=db.describe(),
        sboms={service: scanned.sbom_digest() for service, scanned in images},
        findings=tuple({"service": service, **finding.__dict__} for service, finding in findings)[
            :FINDINGS_KEPT
        ],
        db_digest=db.digest,
        db_built=db.built,
        empty_db=not db.has_advisories,
        trivy_version=scan.trivy_version(),
        policy=policy.digest,
        blocking=blocking,
        waived=waived,
    )
    return RecipeScan(gate, images, verdict)
