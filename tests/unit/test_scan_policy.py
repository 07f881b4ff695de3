"""The scan gate's policy and waivers: shared/policy/scan.yml loads or fails in one line,
`judge` blocks what the policy says unless a live waiver covers it, an expired waiver blocks
again, compose.yml misconfigurations are graded from the installation's guard, and lint warns
before a waiver expires."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from commonshelf.catalogue import contract
from commonshelf.ci import misconfig
from commonshelf.ci.scan import Finding
from commonshelf.ci.scan_policy import (
    Kind,
    Waiver,
    for_catalogue,
    judge,
    load_policy,
    load_waivers,
    policy_path,
)
from commonshelf.platform.errors import RecipeError, ScanError
from commonshelf.recipes.lint import RULES
from commonshelf.recipes.lint.context import RecipeContext
from commonshelf.recipes.model import load_recipe

REPO = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 27)
POLICY = load_policy(policy_path(REPO))


def vuln(severity: str, fixed: str = "", id: str = "CVE-2099-0001") -> Finding:
    target = "img (debian 12.8): openssl"
    return Finding("vulnerability", id, severity, target, "x", "3.0.15-1", fixed, "openssl")


def secret(path: str = "/etc/ssl/private/key.pem", severity: str = "HIGH") -> Finding:
    return Finding("secret", "private-key", severity, f"{path}:1", "Private key", path=path)


def misconf(id: str, severity: str, source: str, path: str = "image/Dockerfile") -> Finding:
    return Finding("misconfiguration", id, severity, path, "a check", path=path, source=source)


def waiver(kind: Kind = "vulnerability", expires: dt.date | None = None, **fields: Any) -> Waiver:
    values: dict[str, Any] = {"id": "CVE-2099-0001", "statement": "not reachable"} | fields
    return Waiver(kind=kind, expires=expires or TODAY + dt.timedelta(days=30), **values)


# ---- the policy file


def test_the_default_policy_says_what_the_issue_asks() -> None:
    assert [r.describe() for r in POLICY.block] == [
        "CRITICAL vulnerabilities",
        "HIGH vulnerabilities with a fix",
        "secrets of any severity",
        "HIGH/CRITICAL misconfigurations in dockerfile or compose",
    ]
    assert [(e.kind, e.id) for e in POLICY.exceptions] == [("misconfiguration", "DS-0029")]
    assert all(e.reason.strip() for e in POLICY.exceptions)
    assert POLICY.describe().startswith("CRITICAL vulnerabilities; HIGH vulnerabilities with")
    assert load_policy(REPO / "shared") == POLICY  # the shared/ folder names the file too


def test_the_digest_follows_the_meaning_not_the_comments(tmp_path: Path) -> None:
    text = policy_path(REPO).read_text()
    assert POLICY.digest.startswith("sha256:") and len(POLICY.digest) == 71
    assert load_policy(policy_path(REPO)).digest == POLICY.digest
    (tmp_path / "comments.yml").write_text("# another comment\n" + text)
    assert load_policy(tmp_path / "comments.yml").digest == POLICY.digest
    (tmp_path / "stricter.yml").write_text(
        text.replace("severities: [HIGH]\n", "severities: [MEDIUM, HIGH]\n")
    )
    assert load_policy(tmp_path / "stricter.yml").digest != POLICY.digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("schema: 1\nblock: [\n", r"scan.yml:\d+: invalid YAML"),
        ("schema: 1\nblock:\n  - kind: secret\n    severities: [HUGE]\n", r"scan.yml:4: .*'HUGE'"),
        ("schema: 1\nblock:\n  - kind: virus\n", r"scan.yml:3: .*'virus'"),
        ("schema: 1\nblock:\n  - kind: secret\n    colour: red\n", r"scan.yml:3: .*colour"),
        ("schema: 1\n", r"scan.yml: .*missing required field block"),
        ("schema: 2\nblock: []\n", r"scan.yml:1: .*schema"),
        ("schema: 1\nblock:\n  - {kind: secret, only_fixable: true}\n", r"scan.yml:3: only_fix"),
        ("schema: 1\nblock:\n  - {kind: secret, severities: []}\n", r"scan.yml:3: .*no severities"),
        (
            "schema: 1\nblock: []\nexceptions: [{kind: secret, id: x, reason: ''}]\n",
            r":3: .*reason",
        ),
        ("- just\n- a list\n", r"scan.yml: .*expected object"),
    ],
)
def test_a_bad_policy_is_one_line_naming_file_line_and_fix(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "scan.yml"
    path.write_text(text)
    with pytest.raises(ScanError, match=expected) as caught:
        load_policy(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and " Fix: " in message


def test_an_oversized_or_missing_policy_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "scan.yml"
    path.write_text("schema: 1\nblock: []\n" + "# padding\n" * 100_000)
    started = time.monotonic()
    with pytest.raises(ScanError, match=r"scan.yml: is \d+ bytes, over the 64 KiB") as caught:
        load_policy(path)
    assert time.monotonic() - started < 0.5 and "Fix: shrink it" in str(caught.value)
    with pytest.raises(
        ScanError, match=r"missing.yml is missing. Fix: restore shared/policy/scan.yml"
    ):
        load_policy(tmp_path / "missing.yml")


# ---- judge


def test_critical_blocks_with_or_without_a_fix_naming_package_and_versions() -> None:
    verdict = judge([vuln("CRITICAL"), vuln("CRITICAL", "3.0.16-1", id="CVE-2")], POLICY, (), TODAY)
    assert not verdict.passed
    reasons = [b.reason for b in verdict.blocking]
    assert reasons[0].startswith("CVE-2099-0001 (CRITICAL) in openssl 3.0.15-1, no fixed version")
    assert "CVE-2 (CRITICAL) in openssl 3.0.15-1, fixed in 3.0.16-1" in reasons[1]
    assert all("\n" not in r and "CRITICAL vulnerabilities" in r for r in reasons)


def test_high_blocks_only_when_a_fix_exists_and_lower_never() -> None:
    fixable, unfixable, medium = (
        vuln("HIGH", "3.0.16-1"),
        vuln("HIGH", id="CVE-3"),
        vuln("MEDIUM", "1"),
    )
    verdict = judge([fixable, unfixable, medium], POLICY, (), TODAY)
    assert [b.finding for b in verdict.blocking] == [fixable]
    assert verdict.allowed == (unfixable, medium)


def test_any_secret_blocks_naming_its_file() -> None:
    verdict = judge([secret(severity="LOW"), secret(severity="UNKNOWN")], POLICY, (), TODAY)
    assert len(verdict.blocking) == 2
    assert "/etc/ssl/private/key.pem:1" in verdict.blocking[0].reason


def test_misconfigurations_block_from_the_recipes_own_files_only() -> None:
    findings = [
        misconf("DS-0002", "HIGH", "dockerfile"),
        misconf("CS-COMPOSE-PRIVILEGED", "CRITICAL", "compose", "compose.yml:9"),
        misconf("KSV-0001", "HIGH", "kubernetes"),  # a manifest inside an image: not ours
        misconf("DS-0026", "LOW", "dockerfile"),
        misconf("DS-0029", "HIGH", "dockerfile"),  # the policy's exception
    ]
    verdict = judge(findings, POLICY, (), TODAY)
    assert [b.finding.id for b in verdict.blocking] == ["DS-0002", "CS-COMPOSE-PRIVILEGED"]
    assert "in image/Dockerfile: a check" in verdict.blocking[0].reason
    assert [f.id for f in verdict.allowed] == ["KSV-0001", "DS-0026"]
    assert [(f.id, e.id) for f, e in verdict.excepted] == [("DS-0029", "DS-0029")]


def test_a_live_waiver_waives_and_an_expired_one_blocks_again() -> None:
    finding = vuln("CRITICAL")
    live = waiver(expires=TODAY)  # the expiry day itself still counts, as R031 counts
    verdict = judge([finding], POLICY, [live], TODAY)
    assert verdict.passed and verdict.waived[0].waiver == live
    lapsed = waiver(expires=TODAY - dt.timedelta(days=1), where=".trivyignore.yaml:2")
    verdict = judge([finding], POLICY, [lapsed], TODAY)
    assert not verdict.passed and verdict.expired == verdict.blocking
    assert verdict.blocking[0].expired == lapsed
    assert "waiver expired on 2026-11-26 (.trivyignore.yaml:2)" in verdict.blocking[0].reason


def test_a_waiver_without_statement_or_expiry_waives_nothing() -> None:
    finding = vuln("CRITICAL")
    for bad in (waiver(statement="  "), Waiver("vulnerability", "CVE-2099-0001", "why")):
        verdict = judge([finding], POLICY, [bad], TODAY)
        assert not verdict.passed and not verdict.expired
        assert "has no statement or expired_at, so waives nothing" in verdict.blocking[0].reason


def test_a_waiver_covers_only_its_kind_id_paths_and_packages() -> None:
    key = secret("/opt/app/lib/manhole.py")
    scoped = waiver("secret", id="private-key", paths=("opt/app/lib/*.py",))
    verdict = judge([key, secret("/etc/key.pem")], POLICY, [scoped], TODAY)
    assert [w.finding for w in verdict.waived] == [key]
    assert "a waiver names this id, but its paths/purls do not match" in verdict.blocking[0].reason
    assert not judge([vuln("CRITICAL")], POLICY, [waiver("secret")], TODAY).passed
    by_purl = waiver(purls=("pkg:deb/debian/openssl@3.0.15-1?arch=amd64",))
    assert judge([vuln("CRITICAL")], POLICY, [by_purl], TODAY).passed
    other = waiver(purls=("pkg:deb/debian/openssl@3.0.14-1",))
    assert not judge([vuln("CRITICAL")], POLICY, [other], TODAY).passed
    # trivy names no file for a package: a vulnerability waiver with paths matches nothing
    assert not judge([vuln("CRITICAL")], POLICY, [waiver(paths=("/usr/lib",))], TODAY).passed


def test_findings_judged_with_their_service_keep_it() -> None:
    findings: list[Finding | tuple[str, Finding]] = [
        ("app", vuln("CRITICAL")),
        ("db", secret()),
        vuln("HIGH", "3.0.16-1"),
    ]
    verdict = judge(findings, POLICY, [waiver("secret", id="private-key")], TODAY)
    assert [b.service for b in verdict.blocking] == ["app", ""]
    assert [w.service for w in verdict.waived] == ["db"]
    lines = verdict.reasons()
    assert lines[0].startswith("app: CVE-2099-0001 (CRITICAL) in openssl 3.0.15-1")
    assert lines[1].startswith("CVE-2099-0001 (HIGH) in openssl 3.0.15-1, fixed in 3.0.16-1")
    blocking, _ = for_catalogue(verdict, "web")
    assert [(f.service, f.severity) for f in blocking] == [("app", "CRITICAL"), ("web", "HIGH")]


def test_the_verdict_becomes_the_catalogues_scan_summary_entries() -> None:
    waived = waiver("secret", id="private-key", statement="unused key")
    verdict = judge([vuln("HIGH", "3.0.16-1"), secret(), secret("/x")], POLICY, [waived], TODAY)
    blocking, waivers = for_catalogue(verdict, "app")
    assert blocking == (
        contract.Finding(
            kind="vulnerability",
            id="CVE-2099-0001",
            severity="HIGH",
            service="app",
            package="openssl",
            installed="3.0.15-1",
            fixed="3.0.16-1",
        ),
    )
    assert waivers == (
        contract.Waived(id="private-key", expires="2026-12-27", statement="unused key"),
    )


# ---- waivers from .trivyignore.yaml


def test_waivers_are_read_in_trivys_format(tmp_path: Path) -> None:
    assert load_waivers(tmp_path) == ()
    shutil.copy(REPO / "recipes/synapse/.trivyignore.yaml", tmp_path)
    (only,) = load_waivers(tmp_path)
    assert (only.kind, only.id, only.expires) == ("secret", "private-key", dt.date(2027, 2, 20))
    assert only.valid and len(only.paths) == 2 and only.where.endswith(".trivyignore.yaml:3")
    (tmp_path / ".trivyignore.yaml").write_text(
        "vulnerabilities:\n  - id: CVE-1\n    expired_at: someday\n"
        "misconfigurations:\n  - id: DS-0002\n    statement: s\n    expired_at: '2027-01-02'\n"
    )
    first, second = load_waivers(tmp_path)
    assert not first.valid and first.expires is None
    assert second.kind == "misconfiguration" and second.expires == dt.date(2027, 1, 2)


@pytest.mark.parametrize(
    "text",
    ["secrets: private-key\n", "secrets:\n  - id: k\n    reason: x\n", "cves: []\n", "[1]\n"],
)
def test_a_malformed_waiver_file_is_one_line(tmp_path: Path, text: str) -> None:
    (tmp_path / ".trivyignore.yaml").write_text(text)
    with pytest.raises(RecipeError, match=r"\.trivyignore\.yaml(:\d+)?: ") as caught:
        load_waivers(tmp_path)
    assert "\n" not in str(caught.value) and "Fix: write trivy's format" in str(caught.value)


# ---- compose.yml misconfigurations


def _recipe_with(tmp_path: Path, service_lines: str) -> Path:
    folder = tmp_path / "recipes" / "custom-html"
    shutil.copytree(REPO / "recipes" / "custom-html", folder)
    compose = folder / "compose.yml"
    compose.write_text(
        compose.read_text().replace("    volumes:\n", service_lines + "    volumes:\n", 1)
    )
    return folder


def test_the_bundled_recipes_composes_are_clean() -> None:
    for folder in sorted((REPO / "recipes").iterdir()):
        if (folder / "recipe.yml").is_file():
            assert misconfig.compose_findings(load_recipe(folder)) == [], folder.name


def test_compose_findings_grade_what_the_guard_refuses(tmp_path: Path) -> None:
    folder = _recipe_with(
        tmp_path,
        "    privileged: true\n"
        "    network_mode: host\n"
        "    pid: host\n"
        "    ipc: host\n"
        "    cap_add: [SYS_ADMIN, CHOWN]\n"
        "    devices: ['/dev/fuse:/dev/fuse']\n",
    )
    compose = folder / "compose.yml"
    compose.write_text(
        compose.read_text().replace(
            "      - content:/srv/www\n",
            "      - content:/srv/www\n"
            "      - /var/run/docker.sock:/var/run/docker.sock\n"
            "      - {type: bind, source: /run, target: /host-run}\n"
            "      - /srv/shared:/shared\n",
        )
    )
    found = misconfig.compose_findings(load_recipe(folder))
    graded = {(f.id, f.severity, f.target) for f in found}
    assert graded == {
        ("CS-COMPOSE-PRIVILEGED", "CRITICAL", "compose.yml:9"),
        ("CS-COMPOSE-HOST-NAMESPACE", "HIGH", "compose.yml:10"),
        ("CS-COMPOSE-HOST-NAMESPACE", "HIGH", "compose.yml:11"),
        ("CS-COMPOSE-HOST-NAMESPACE", "HIGH", "compose.yml:12"),
        ("CS-COMPOSE-CAP-ADD", "HIGH", "compose.yml:13"),
        ("CS-COMPOSE-CAP-ADD", "MEDIUM", "compose.yml:13"),  # CHOWN: the guard allows it
        ("CS-COMPOSE-DEVICE", "HIGH", "compose.yml:14"),
        ("CS-COMPOSE-ENGINE-SOCKET", "CRITICAL", "compose.yml:17"),
        ("CS-COMPOSE-ENGINE-SOCKET", "CRITICAL", "compose.yml:18"),  # /run holds the socket
        ("CS-COMPOSE-HOST-PATH", "HIGH", "compose.yml:19"),
    }
    assert all(f.kind == "misconfiguration" and f.source == "compose" for f in found)
    assert all(f.path == "compose.yml" and f.title.startswith("service 'app': ") for f in found)
    verdict = judge(found, POLICY, (), TODAY)
    assert len(verdict.blocking) == len(found) - 1  # all but the MEDIUM capability


@pytest.mark.parametrize(
    ("source", "socket"),
    [
        ("/var/run/docker.sock", True),
        ("/run/docker.sock", True),
        ("/var/run/../run/docker.sock", True),
        ("/home/me/.docker/run/docker.sock", True),
        ("/", True),
        ("/var", True),
        ("/var/run/", True),
        ("/srv/data", False),
        ("/run/user", False),
        ("docker.sock", False),  # a named volume, not a host path
    ],
)
def test_engine_socket_paths(source: str, socket: bool) -> None:
    assert misconfig.is_engine_socket(source) is socket


# ---- lint R035


def _lint_r035(tmp_path: Path, expires: str, statement: str = "not exposed") -> list[str]:
    folder = tmp_path / "recipes" / "app"
    folder.mkdir(parents=True)
    (folder / ".trivyignore.yaml").write_text(
        "vulnerabilities:\n  - id: CVE-1\n"
        f"    statement: '{statement}'\n    expired_at: {expires}\n"
    )
    context = RecipeContext(folder, tmp_path, today=TODAY)
    return [f"{f.location()} {f.message}" for f in RULES["R035"].run_recipe(context)]


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("2026-12-11", "expires in 14 days (2026-12-11)"),
        ("2026-11-28", "expires in 1 day (2026-11-28)"),
        ("2026-11-27", "expires today (2026-11-27)"),
        ("2026-12-12", None),  # 15 days: nothing yet
        ("2026-11-26", None),  # expired: R031's error
        ("never", None),  # no date: R031's error
    ],
)
def test_lint_warns_two_weeks_before_a_waiver_expires(
    tmp_path: Path, expires: str, message: str | None
) -> None:
    assert RULES["R035"].severity == "warning" and "re-review" in RULES["R035"].fix
    where = "recipes/app/.trivyignore.yaml:2 waiver CVE-1"
    assert _lint_r035(tmp_path, expires) == ([f"{where} {message}"] if message else [])


def test_lint_leaves_a_waiver_without_statement_to_r030(tmp_path: Path) -> None:
    assert _lint_r035(tmp_path, "2026-11-30", statement=" ") == []
