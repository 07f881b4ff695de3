"""Evidence: what CI proved about one exact recipe content, so release can trust it.

A record is keyed by the recipe's content hash. Each gate (build, test, scan)
adds its typed result; promotion takes a version only when the record for the
current content hash exists and every gate passed. Changing any file of the
recipe changes the hash, which makes the old evidence irrelevant by design.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

from commonshelf.catalogue.contract import Finding, UpgradeProof, Waived
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.fsutil import write_bytes_atomic
from commonshelf.platform.loaders import EVIDENCE, load_json

GATES = ("build", "test", "scan")


class Record(msgspec.Struct, kw_only=True):
    """Base of a gate's result."""

    passed: bool
    summary: str
    at: str = msgspec.field(default_factory=now_iso)


class BuiltImage(msgspec.Struct, kw_only=True, frozen=True):
    ref: str  # local tag
    id: str  # image id the later gates ran


class BuildGate(Record, kw_only=True):
    images: dict[str, BuiltImage]
    base_image: str


class CheckResult(msgspec.Struct, kw_only=True, frozen=True):
    """One check of the standard matrix (or the lint verdict)."""

    check: str
    status: Literal["passed", "failed", "skipped", "n/a"]
    seconds: float
    detail: str = ""


class TestGate(Record, kw_only=True):
    tests_passed: int
    tests_failed: int
    tests_skipped: int
    seconds: float
    level: int
    max_level: int
    min_level: int
    lint: CheckResult | None = None
    matrix: tuple[CheckResult, ...] = ()
    matrix_seconds: float = 0.0
    upgrade: UpgradeProof | None = None  # probes through the proxy during the upgrade


class ScanGate(Record, kw_only=True):
    counts: dict[str, int]
    fail_on: str
    vuln_db: str
    sboms: dict[str, Any] = {}  # service -> "sha256:…" of its SBOM (EvidenceStore.reports)
    findings: tuple[dict[str, Any], ...] = ()
    db_digest: str = ""
    db_built: str = ""
    empty_db: bool = False  # --allow-empty-db: vulnerabilities were not checked; never released
    trivy_version: str = ""
    policy: str = ""  # digest of shared/policy/scan.yml as applied
    blocking: tuple[Finding, ...] = ()
    waived: tuple[Waived, ...] = ()


class Gates(msgspec.Struct, kw_only=True, omit_defaults=True):
    build: BuildGate | None = None
    test: TestGate | None = None
    scan: ScanGate | None = None


class Evidence(msgspec.Struct, kw_only=True):
    recipe: str
    version: str
    content_hash: str
    gates: Gates = msgspec.field(default_factory=Gates)
    tools: dict[str, str] = {}  # what produced the gates, by version

    @property
    def passed(self) -> bool:
        return all(
            gate is not None and gate.passed
            for gate in (self.gates.build, self.gates.test, self.gates.scan)
        )

    def missing_or_failed(self) -> list[str]:
        """Gates that have not passed, as '<gate>: <why>' lines."""
        out = []
        for name in GATES:
            gate: Record | None = getattr(self.gates, name)
            if gate is None:
                out.append(f"{name}: not run")
            elif not gate.passed:
                out.append(f"{name}: failed ({gate.summary or 'see evidence'})")
        return out


def tool_versions(client: Any) -> dict[str, str]:
    """Versions of everything that built, tested and scanned, so a result can be reproduced."""
    import platform
    from importlib import metadata

    from commonshelf.ci.scan import trivy_version

    versions = {"python": platform.python_version()}
    for package in ("commonshelf", "pytest", "testcontainers", "docker", "tuf", "msgspec"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["docker_engine"] = str(client.version().get("Version", "unknown"))
    versions["trivy"] = trivy_version() or "unknown"
    return versions


class EvidenceStore:
    """Evidence records under `build/evidence/<recipe>/<content hash>.json`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, recipe: str, content_hash: str) -> Path:
        return self.root / recipe / f"{content_hash}.json"

    def reports(self, recipe: str, content_hash: str) -> Path:
        """The scan's files beside the record: SERVICE.json, SERVICE.sarif, SERVICE.cdx.json."""
        return self.root / recipe / content_hash

    def sbom(self, recipe: str, content_hash: str, service: str) -> Path:
        return self.reports(recipe, content_hash) / f"{service}.cdx.json"

    def load(self, recipe: str, version: str, content_hash: str) -> Evidence:
        """The record for this content, or a fresh empty one (also for a record of an older
        format, which only means the gates run again)."""
        fresh = Evidence(recipe=recipe, version=version, content_hash=content_hash)
        path = self.path(recipe, content_hash)
        if not path.exists():
            return fresh
        try:
            found = msgspec.convert(load_json(path, EVIDENCE), Evidence)
        except (msgspec.ValidationError, CommonshelfError):
            return fresh
        if found.content_hash != content_hash or found.version != version:
            return fresh
        return found

    def save(self, evidence: Evidence) -> Path:
        path = self.path(evidence.recipe, evidence.content_hash)
        body = msgspec.json.format(msgspec.json.encode(evidence, order="sorted"), indent=2)
        write_bytes_atomic(path, body + b"\n")
        return path
