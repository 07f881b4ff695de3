"""The scan gate on a real recipe, as `invoke scan` runs it: images built and scanned with
the real trivy against a vulnerability DB pulled from the registry, judged by
shared/policy/scan.yml and the recipe's waivers (.trivyignore.yaml)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from commonshelf.ci import vulndb
from commonshelf.ci.stages import Shelf
from commonshelf.ci.trivydb import Advisory
from commonshelf.platform.settings import Settings

from ..conftest import REPO
from .conftest import APP, edit_yaml

CVE = "CVE-2099-0001"


def _with_critical_db(workspace: Settings, tmp_path: Path) -> Settings:
    """The workspace scanning against a DB (in the registry) in which nginx is critical."""
    repository = f"{workspace.registry}/commonshelf/tests/trivy-db-gate"
    advisory = Advisory("nginx", CVE, "99.0.0-1", "CRITICAL", "fixture: nginx RCE")
    built = datetime(2026, 11, 27, tzinfo=UTC)
    vulndb.push(vulndb.build_artifact([advisory], built, tmp_path / "db"), repository)
    return dataclasses.replace(workspace, trivy_db_repository=repository)


def _waive(folder: Path, expires: dt.date) -> None:
    (folder / ".trivyignore.yaml").write_text(
        "vulnerabilities:\n"
        f"  - id: {CVE}\n"
        "    statement: fixture - nginx is only reached through the proxy\n"
        f"    expired_at: {expires.isoformat()}\n"
    )


def _invoke_scan(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "scan", APP],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env={
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin:/usr/sbin:/sbin",
            "COMMONSHELF_ROOT": str(settings.root),
            "COMMONSHELF_TRIVY_DB_REPOSITORY": settings.trivy_db_repository,
            "COMMONSHELF_STATE_DIR": str(settings.state_dir),
            "COMMONSHELF_REGISTRY": settings.registry,
            "TESTCONTAINERS_RYUK_DISABLED": "true",
            "COLUMNS": "200",
        },
    )


def test_a_vulnerable_package_blocks_until_waived_and_again_once_the_waiver_expires(
    workspace: Settings, tmp_path: Path
) -> None:
    settings = _with_critical_db(workspace, tmp_path)
    folder = settings.recipes_dir / APP
    # `invoke scan APP` prints the table and exits 1 because the policy blocks
    done = _invoke_scan(settings)
    assert done.returncode == 1, done.stdout + done.stderr
    assert CVE in done.stdout and "nginx-light" in done.stdout and "99.0.0-1" in done.stdout
    assert "BLOCKED" in done.stdout and "trivy-db-gate@sha256:" in done.stdout

    shelf = Shelf(settings)
    [recipe] = shelf.recipes([APP])
    gate = shelf.load_evidence(recipe).gates.scan
    assert gate is not None and not gate.passed
    [light] = [f for f in gate.blocking if f.package == "nginx-light"]
    assert (light.id, light.severity, light.fixed) == (CVE, "CRITICAL", "99.0.0-1")
    assert light.installed.startswith("1.22.1") and light.service == "app"
    remote = vulndb.remote_layer(settings.trivy_db_repository)
    assert remote is not None and gate.db_digest == remote[0] and gate.db_built
    assert gate.trivy_version and gate.policy.startswith("sha256:")

    today = dt.date.today()
    _waive(folder, today + dt.timedelta(days=30))  # a live waiver lets it pass
    [recipe] = shelf.recipes([APP])
    result = shelf.scan(recipe, force=True)
    assert result.passed, result.summary
    gate = shelf.load_evidence(recipe).gates.scan
    assert gate is not None and not gate.blocking
    assert [(w.id, w.expires) for w in gate.waived] == [
        (CVE, (today + dt.timedelta(days=30)).isoformat())
    ]

    _waive(folder, today - dt.timedelta(days=1))  # an expired one blocks again
    [recipe] = Shelf(settings).recipes([APP])
    shelf = Shelf(settings)
    result = shelf.scan(recipe, force=True)
    assert not result.passed and "waiver expired" in result.summary, result.summary


def test_a_private_key_in_the_image_blocks_and_a_privileged_service_is_reported(
    workspace: Settings, tmp_path: Path
) -> None:
    folder = workspace.recipes_dir / APP
    key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (folder / "image" / "site" / "deploy-key.pem").write_bytes(key)  # served with the site
    edit_yaml(folder / "compose.yml", lambda c: c["services"]["app"].update(privileged=True))
    shelf = Shelf(workspace)
    [recipe] = shelf.recipes([APP])
    result = shelf.scan(recipe, force=True)
    assert not result.passed
    gate = shelf.load_evidence(recipe).gates.scan
    assert gate is not None
    kinds = {(f.kind, f.id) for f in gate.blocking}
    assert ("secret", "private-key") in kinds, gate.blocking
    assert any(kind == "misconfiguration" and "PRIVILEGED" in ident for kind, ident in kinds)
    secret = next(f for f in gate.blocking if f.kind == "secret")
    assert "deploy-key.pem" in secret.where
