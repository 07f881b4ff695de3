"""Evidence: what CI proved about one exact recipe content, so release can trust it.

A record is keyed by the recipe's content hash. Each gate (build, test, scan)
adds its result; `release` promotes a version only when the record for the
current content hash exists and every gate passed. Changing any file of the
recipe changes the hash, which makes the old evidence irrelevant by design.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from commonshelf.platform.fsutil import write_json_atomic

GATES = ("build", "test", "scan")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Evidence:
    recipe: str
    version: str
    content_hash: str
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)  # what produced the gates, by version

    @property
    def passed(self) -> bool:
        return all(self.gates.get(g, {}).get("passed") is True for g in GATES)

    def missing_or_failed(self) -> list[str]:
        """Gates that have not passed, as '<gate>: <why>' lines."""
        out = []
        for gate in GATES:
            result = self.gates.get(gate)
            if result is None:
                out.append(f"{gate}: not run")
            elif result.get("passed") is not True:
                out.append(f"{gate}: failed ({result.get('summary', 'see evidence')})")
        return out

    def record(self, gate: str, passed: bool, summary: str, **details: Any) -> None:
        self.gates[gate] = {"passed": passed, "summary": summary, "at": now_iso(), **details}

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "version": self.version,
            "content_hash": self.content_hash,
            "passed": self.passed,
            "tools": self.tools,
            "gates": self.gates,
        }


def tool_versions(client: Any) -> dict[str, str]:
    """Versions of everything that built, tested and scanned, so a result can be reproduced."""
    import platform
    from importlib import metadata

    from commonshelf.ci.scan import trivy_version

    versions = {"python": platform.python_version()}
    for package in ("commonshelf", "pytest", "testcontainers", "docker", "tuf"):
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

    def load(self, recipe: str, version: str, content_hash: str) -> Evidence:
        """The record for this content, or a fresh empty one."""
        try:
            data = json.loads(self.path(recipe, content_hash).read_text())
        except (OSError, ValueError):
            return Evidence(recipe, version, content_hash)
        if data.get("content_hash") != content_hash or data.get("version") != version:
            return Evidence(recipe, version, content_hash)
        return Evidence(
            recipe,
            version,
            content_hash,
            dict(data.get("gates") or {}),
            dict(data.get("tools") or {}),
        )

    def save(self, evidence: Evidence) -> Path:
        path = self.path(evidence.recipe, evidence.content_hash)
        write_json_atomic(path, evidence.to_dict())
        return path
