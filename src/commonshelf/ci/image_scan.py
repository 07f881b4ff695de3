"""One image through trivy once: its JSON report, SARIF and CycloneDX SBOM, cached.

trivy scans the image once (`--format json`, every package listed); the SARIF for
code-scanning UIs and the CycloneDX SBOM are converted from that report (`trivy convert`)
rather than scanned again. The three files are kept in a cache keyed by what decides
trivy's answer: the image id, the vulnerability DB's digest, trivy's version and the
scanners. The policy is not part of the key because it is applied afterwards to the cached
findings, so an image already scanned with the same DB is never scanned again, whatever
the policy or waivers say.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from commonshelf.ci import scan
from commonshelf.platform import trivy
from commonshelf.platform.errors import ScanError
from commonshelf.platform.fsutil import fsync_file
from commonshelf.platform.loaders import REPORT, InputError, load_json

# (the recipe's own Dockerfiles and compose file are checked by `misconfig`; a Dockerfile
# that happens to ship inside an image is not the recipe's configuration)
SCANNERS = "vuln,secret"
REPORT_FILE, SARIF_FILE, SBOM_FILE = "report.json", "report.sarif", "sbom.cdx.json"


@dataclass(frozen=True)
class ImageScan:
    """What trivy found in one image, and where its three files are."""

    image: str
    findings: list[scan.Finding]
    folder: Path  # holds report.json, report.sarif, sbom.cdx.json
    cached: bool
    seconds: float

    @property
    def sbom(self) -> Path:
        return self.folder / SBOM_FILE

    @property
    def sarif(self) -> Path:
        return self.folder / SARIF_FILE

    @property
    def report(self) -> Path:
        return self.folder / REPORT_FILE

    def sbom_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.sbom.read_bytes()).hexdigest()


def cache_key(image_id: str, db: scan.VulnDb) -> str:
    """What decides trivy's findings on an image: image, DB, trivy, scanners."""
    parts = (image_id, db.digest, trivy.version(), SCANNERS)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _findings(report: Path, image: str) -> list[scan.Finding]:
    try:
        data = load_json(report, REPORT)
    except InputError as exc:
        raise ScanError(
            f"trivy's report on {image} is unreadable ({exc.problem}).", "scan again."
        ) from None
    if not isinstance(data, dict):
        raise ScanError(f"trivy's report on {image} is not an object.", "scan again.")
    return scan.parse_report(data)


def scan_image(
    image: str, image_id: str, *, cache_dir: Path, db: scan.VulnDb, store: Path
) -> ImageScan:
    """The image's findings and files, from `store` when this image was scanned with this
    DB before, else from trivy (the files are written to a temporary folder, then renamed
    into the store, so a killed scan leaves nothing half-written)."""
    started = time.monotonic()
    folder = store / cache_key(image_id, db)
    if all((folder / name).is_file() for name in (REPORT_FILE, SARIF_FILE, SBOM_FILE)):
        found = _findings(folder / REPORT_FILE, image)
        return ImageScan(image, found, folder, True, time.monotonic() - started)
    store.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".scan-", dir=store))
    try:
        report = staging / REPORT_FILE
        trivy.run(
            "image",
            "--image-src",
            "docker",
            "--scanners",
            SCANNERS,
            "--list-all-pkgs",
            "--format",
            "json",
            "--output",
            str(report),
            image,
            cache_dir=cache_dir,
            target=image,
            fix="check that the image exists locally and the cache dir is writable.",
        )
        found = _findings(report, image)
        trivy.convert(report, staging / SARIF_FILE, "sarif")
        trivy.convert(report, staging / SBOM_FILE, "cyclonedx")
        for name in (REPORT_FILE, SARIF_FILE, SBOM_FILE):
            fsync_file(staging / name)
        staging.chmod(0o755)
        if folder.exists():  # another worker scanned the same image meanwhile
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return ImageScan(image, found, folder, False, time.monotonic() - started)


def sbom_findings(sbom: Path, *, cache_dir: Path) -> list[scan.Finding]:
    """The vulnerabilities the current DB knows in the packages an SBOM lists (a released
    version's image is never scanned again: `invoke rescan` reads its SBOM)."""
    out = trivy.run(
        "sbom",
        "--format",
        "json",
        str(sbom),
        cache_dir=cache_dir,
        target=sbom.name,
        fix="check that the SBOM is a CycloneDX file trivy wrote.",
    )
    return scan.parse_report(scan.report_of(out, sbom.name))
