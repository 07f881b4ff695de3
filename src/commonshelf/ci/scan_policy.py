"""The scan gate's judgement: which findings block a release, under the shelf's policy
(`shared/policy/scan.yml`) and the recipe's waivers (`scan_waivers`).

A finding blocks when a policy rule matches it, no policy exception names its check and no
live waiver covers it. The findings come from trivy (`ci.scan`, `ci.image_scan`) and from
the recipe's own Dockerfiles and compose file (`ci.misconfig`, re-exported here).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import msgspec

from commonshelf.catalogue import contract
from commonshelf.ci.misconfig import compose_findings, dockerfile_findings
from commonshelf.ci.scan import Finding
from commonshelf.ci.scan_waivers import Kind, Waiver, load_waivers, located, problem
from commonshelf.platform.errors import ScanError
from commonshelf.platform.loaders import InputError, load_yaml_with_lines
from commonshelf.platform.loaders.limits import SCAN_POLICY

__all__ = [
    "Blocked",
    "Kind",
    "Policy",
    "Verdict",
    "Waiver",
    "compose_findings",
    "dockerfile_findings",
    "for_catalogue",
    "judge",
    "load_policy",
    "load_waivers",
]

Severity = Literal["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
ALL_SEVERITIES: tuple[Severity, ...] = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
POLICY_FILE = Path("shared") / "policy" / "scan.yml"
_FIX = "correct it; the comments at the top of shared/policy/scan.yml say what each field takes."


# ---- the policy


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Findings of `kind` at one of `severities` block (narrowed by the two options)."""

    kind: Kind
    severities: tuple[Severity, ...] = ALL_SEVERITIES
    only_fixable: bool = False  # vulnerabilities: only when a fixed version exists
    sources: tuple[str, ...] = ()  # misconfigurations: dockerfile, compose, …; () = any

    def matches(self, finding: Finding) -> bool:
        return (
            finding.kind == self.kind
            and _severity(finding) in self.severities
            and (not self.only_fixable or bool(finding.fixed))
            and (not self.sources or finding.source in self.sources)
        )

    def describe(self) -> str:
        """'HIGH vulnerabilities with a fix', 'secrets of any severity', …"""
        plural = self.kind[:-1] + "ies" if self.kind.endswith("y") else self.kind + "s"
        if set(self.severities) == set(ALL_SEVERITIES):
            text = f"{plural} of any severity"
        else:
            text = f"{'/'.join(self.severities)} {plural}"
        if self.only_fixable:
            text += " with a fix"
        if self.sources:
            text += f" in {' or '.join(self.sources)}"
        return text


class PolicyException(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A check that does not apply to the shelf as a whole, and why."""

    kind: Kind
    id: str
    reason: str


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """shared/policy/scan.yml, typed."""

    schema: Literal[1]
    block: tuple[Rule, ...]
    exceptions: tuple[PolicyException, ...] = ()

    @property
    def digest(self) -> str:
        """'sha256:<hex>' of the policy's meaning (not its comments or layout): part of the
        scan cache key, so a changed policy judges every image again."""
        data = msgspec.json.encode(self, order="sorted")
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def describe(self) -> str:
        """The rules in one line (the catalogue's `ScanSummary.fail_on`)."""
        return "; ".join(rule.describe() for rule in self.block)

    def rule_for(self, finding: Finding) -> Rule | None:
        return next((rule for rule in self.block if rule.matches(finding)), None)

    def exception_for(self, finding: Finding) -> PolicyException | None:
        return next(
            (e for e in self.exceptions if e.kind == finding.kind and e.id == finding.id), None
        )


def policy_path(root: Path) -> Path:
    return root / POLICY_FILE


def load_policy(path: Path) -> Policy:
    """The policy in `path` (the file, or the shelf's `shared/` folder that holds it as
    policy/scan.yml), or one ScanError line naming the file (and line) and the fix."""
    if path.is_dir():
        path = path / POLICY_FILE.relative_to("shared")
    if not path.exists():
        raise ScanError(f"{path} is missing.", f"restore {POLICY_FILE} from git.")
    try:
        data, lines = load_yaml_with_lines(path, SCAN_POLICY)
    except InputError as exc:
        raise ScanError(exc.what, exc.fix) from None
    try:
        policy = msgspec.convert(data, Policy)
    except msgspec.ValidationError as exc:
        raise ScanError(f"{located(path, lines, str(exc))}: {problem(str(exc))}.", _FIX) from None
    for index, rule in enumerate(policy.block):
        where = f"{path}:{lines.get(('block', index), '?')}"
        if not rule.severities:
            raise ScanError(f"{where}: rule {index + 1} lists no severities.", _FIX)
        if rule.only_fixable and rule.kind != "vulnerability":
            raise ScanError(f"{where}: only_fixable applies to vulnerabilities only.", _FIX)
        if rule.sources and rule.kind != "misconfiguration":
            raise ScanError(f"{where}: sources apply to misconfigurations only.", _FIX)
    for index, exception in enumerate(policy.exceptions):
        if not exception.id.strip() or not exception.reason.strip():
            where = f"{path}:{lines.get(('exceptions', index), '?')}"
            raise ScanError(f"{where}: an exception needs an id and a reason.", _FIX)
    return policy


# ---- the verdict


@dataclass(frozen=True)
class Blocked:
    """A finding that blocks, why (one line), and the expired waiver that covered it."""

    finding: Finding
    reason: str
    expired: Waiver | None = None
    service: str = ""  # the image's service, when the finding came with one


@dataclass(frozen=True)
class WaivedFinding:
    finding: Finding
    waiver: Waiver
    service: str = ""


@dataclass(frozen=True)
class Verdict:
    """What the gate decided. `blocking` includes the findings whose waiver expired
    (`expired` lists those); `excepted` were blocked by a rule but a policy exception
    names their check; `allowed` no rule blocks."""

    blocking: tuple[Blocked, ...] = ()
    waived: tuple[WaivedFinding, ...] = ()
    excepted: tuple[tuple[Finding, PolicyException], ...] = ()
    allowed: tuple[Finding, ...] = ()

    @property
    def expired(self) -> tuple[Blocked, ...]:
        return tuple(b for b in self.blocking if b.expired is not None)

    @property
    def passed(self) -> bool:
        return not self.blocking

    def reasons(self) -> list[str]:
        """One line per blocking finding ('app: CVE-… (CRITICAL) in openssl …')."""
        return [f"{b.service}: {b.reason}" if b.service else b.reason for b in self.blocking]


def judge(
    findings: Iterable[Finding | tuple[str, Finding]],
    policy: Policy,
    waivers: Iterable[Waiver],
    today: dt.date,
) -> Verdict:
    """Apply the policy, its exceptions and the recipe's waivers to the findings (each
    alone, or as (service, finding) when it came from a service's image)."""
    waivers = tuple(waivers)
    blocking: list[Blocked] = []
    waived: list[WaivedFinding] = []
    excepted: list[tuple[Finding, PolicyException]] = []
    allowed: list[Finding] = []
    for item in findings:
        service, finding = item if isinstance(item, tuple) else ("", item)
        rule = policy.rule_for(finding)
        if rule is None:
            allowed.append(finding)
            continue
        exception = policy.exception_for(finding)
        if exception is not None:
            excepted.append((finding, exception))
            continue
        covering = [w for w in waivers if w.covers(finding)]
        live = [w for w in covering if w.live(today)]
        if live:
            waived.append(WaivedFinding(finding, max(live, key=_expiry_key), service))
            continue
        lapsed = [w for w in covering if w.valid]  # valid, covering, not live: expired
        expired = max(lapsed, key=_expiry_key) if lapsed else None
        reason = f"{describe(finding)}; blocked by the policy ({rule.describe()})"
        if expired is not None:
            reason += f"; waiver expired on {expired.expires} ({expired.where})"
        elif covering:
            where = covering[0].where
            reason += f"; its waiver has no statement or expired_at, so waives nothing ({where})"
        elif any(w.names(finding) and w.live(today) for w in waivers):
            reason += "; a waiver names this id, but its paths/purls do not match"
        blocking.append(Blocked(finding, reason, expired, service))
    return Verdict(tuple(blocking), tuple(waived), tuple(excepted), tuple(allowed))


def _expiry_key(waiver: Waiver) -> dt.date:
    return waiver.expires or dt.date.min


def describe(finding: Finding) -> str:
    """A finding in one line: id, severity, and package and versions or the file."""
    head = f"{finding.id} ({_severity(finding)})"
    if finding.kind == "vulnerability":
        fix = f"fixed in {finding.fixed}" if finding.fixed else "no fixed version yet"
        return f"{head} in {finding.package or finding.target} {finding.installed}, {fix}"
    title = f": {finding.title}" if finding.title else ""
    if finding.kind == "secret":
        return f"{head} secret in {finding.target or finding.path}{title}"
    return f"{head} in {finding.target or finding.path}{title}"


def _severity(finding: Finding) -> str:
    return finding.severity if finding.severity in ALL_SEVERITIES else "UNKNOWN"


# ---- into the catalogue


def for_catalogue(
    verdict: Verdict, service: str = ""
) -> tuple[tuple[contract.Finding, ...], tuple[contract.Waived, ...]]:
    """`ScanSummary.blocking` and `.waived`: each blocking finding with its service (the one
    it was judged with, else `service`), and each waiver once, however much it covers."""
    blocking = tuple(_entry(b.finding, b.service or service) for b in verdict.blocking)
    waived: dict[tuple[str, str], contract.Waived] = {}
    for item in verdict.waived:
        expires = item.waiver.expires.isoformat() if item.waiver.expires else ""
        waived.setdefault(
            (item.waiver.id, expires),
            contract.Waived(id=item.waiver.id, expires=expires, statement=item.waiver.statement),
        )
    return blocking, tuple(waived.values())


def _entry(finding: Finding, service: str) -> contract.Finding:
    return contract.Finding(
        kind=cast(Kind, finding.kind),
        id=finding.id,
        severity=finding.severity,
        service=service,
        package=finding.package,
        installed=finding.installed,
        fixed=finding.fixed,
        where="" if finding.kind == "vulnerability" else (finding.target or finding.path),
    )
