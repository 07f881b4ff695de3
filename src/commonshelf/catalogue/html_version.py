"""Parts of the catalogue page (`catalogue.html`): one released version, and advisories.

Every value is escaped by `e`; a link is made only from a checked TUF target path.
"""

from __future__ import annotations

import html
import re
import urllib.parse

from commonshelf.catalogue.contract import AppEntry, ScanSummary, TargetRef, VersionEntry

STATUSES = ("passed", "failed", "skipped", "n/a")
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def e(value: object) -> str:
    """`value` as text safe in HTML content and in quoted attributes."""
    return html.escape(str(value), quote=True)


def channel_of(entry: VersionEntry) -> str:
    """The channel a version is published in (testing, stable), once the contract has one."""
    return str(getattr(entry, "channel", "") or "")


def _table(caption: str, columns: tuple[str, ...], rows: list[list[str]]) -> str:
    """A table whose first cell of each row heads it; cells are already escaped HTML."""
    head = "".join(f'<th scope="col">{column}</th>' for column in columns)
    body = "".join(
        f'<tr><th scope="row">{row[0]}</th>{"".join(f"<td>{cell}</td>" for cell in row[1:])}</tr>'
        for row in rows
    )
    return (
        f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _status(status: str) -> str:
    css = f' class="{status}"' if status in ("passed", "failed") else ""
    return f"<span{css}>{e(status)}</span>"


def checks_summary(entry: VersionEntry) -> str:
    """ "6 of 6 passed", naming any check that did not pass."""
    checks = entry.vetting.checks
    passed = sum(1 for c in checks.values() if c.status == "passed")
    text = f"{passed} of {len(checks)} passed"
    others = [
        f"{e(name)} {_status(c.status)}" for name, c in checks.items() if c.status != "passed"
    ]
    return text + (f" ({', '.join(others)})" if others else "")


def scan_brief(entry: VersionEntry) -> str:
    scan = entry.vetting.scan
    blocking = f"{len(scan.blocking)} blocking"
    if scan.blocking:
        blocking = f'<span class="blocking">{blocking}</span>'
    return f"{blocking}, {len(scan.waived)} waived"


def target_href(ref: TargetRef) -> str | None:
    """Where a TUF target lies under public/ (`targets/<dir>/<sha256>.<name>`, consistent
    snapshots), as a relative URL; None when the reference is not a plain relative path."""
    words = ref.path.split("/")
    if not _HEX64.fullmatch(ref.sha256) or any(w in ("", ".", "..") for w in words):
        return None
    words[-1] = f"{ref.sha256}.{words[-1]}"
    return "targets/" + urllib.parse.quote("/".join(words), safe="/")


def _sboms(scan: ScanSummary) -> str:
    if not scan.sboms:
        return "<p>No SBOM was published for this version.</p>"
    items = []
    for service, ref in sorted(scan.sboms.items()):
        href = target_href(ref)
        label = f"{e(service)}: CycloneDX SBOM, {e(ref.length)} bytes"
        link = f'<a href="{e(href)}">{label}</a>' if href else label
        items.append(f"<li>{link}, sha256 <code>{e(ref.sha256)}</code></li>")
    return (
        "<p>SBOMs (download them verified with <code>commonshelf sbom APP</code>):</p>"
        f"<ul>{''.join(items)}</ul>"
    )


def _scan(scan: ScanSummary) -> str:
    severities = [s for s in SEVERITIES if s in scan.counts] + sorted(
        s for s in scan.counts if s not in SEVERITIES
    )
    counts = _table(
        "Findings by severity",
        ("Severity", *(e(s) for s in severities)),
        [["Findings", *(e(scan.counts[s]) for s in severities)]],
    )
    parts = [
        f"<p>{e(scan.summary) or 'No summary recorded.'}</p>",
        counts if severities else "",
        "<dl>",
        f"<dt>Blocks on</dt><dd>{e(scan.fail_on)} and above</dd>",
        f"<dt>Blocking findings</dt><dd>{len(scan.blocking)}</dd>",
        f"<dt>Waived findings</dt><dd>{len(scan.waived)}</dd>",
        f"<dt>Vulnerability DB digest</dt><dd><code>{e(scan.db_digest) or 'not recorded'}"
        "</code></dd>",
        f"<dt>Vulnerability DB built</dt><dd>{e(scan.db_built) or 'not recorded'}</dd>",
        f"<dt>Scanner</dt><dd>trivy {e(scan.trivy_version) or '(version not recorded)'}</dd>",
        "</dl>",
    ]
    if scan.blocking:
        parts.append(
            _table(
                "Blocking findings",
                ("ID", "Kind", "Severity", "Service", "Package", "Installed", "Fixed in", "Where"),
                [
                    [
                        e(value)
                        for value in (
                            f.id,
                            f.kind,
                            f.severity,
                            f.service,
                            f.package,
                            f.installed,
                            f.fixed,
                            f.where,
                        )
                    ]
                    for f in scan.blocking
                ],
            )
        )
    if scan.waived:
        parts.append(
            _table(
                "Waived findings",
                ("ID", "Waived until", "Statement"),
                [[e(w.id), e(w.expires), e(w.statement)] for w in scan.waived],
            )
        )
    parts.append(_sboms(scan))
    return "\n".join(p for p in parts if p)


def changes(text: str) -> str:
    """A CHANGELOG entry ("- item" lines, indented continuations) as a list; other lines
    as paragraphs. Markup in it is shown, never interpreted."""
    items: list[list[str]] = []
    loose: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped[:2] in ("- ", "* "):
            items.append([stripped[2:]])
        elif items and line[:1].isspace():
            items[-1].append(stripped)
        else:
            loose.append(stripped)
    out = "".join(f"<p>{e(line)}</p>" for line in loose)
    if items:
        out += "<ul>" + "".join(f"<li>{e(' '.join(item))}</li>" for item in items) + "</ul>"
    return out or "<p>No changes were recorded.</p>"


def advisories_table(app: AppEntry) -> str:
    if not app.advisories:
        return "<p>None reported for any released version.</p>"
    return _table(
        f"Advisories found after release in {e(app.title)}",
        ("ID", "Severity", "Package", "Affected versions", "Fixed in", "Title", "Found"),
        [
            [
                e(value)
                for value in (
                    a.id,
                    a.severity,
                    a.package,
                    ", ".join(a.affected),
                    a.fixed_in or "no fixed version yet",
                    a.title,
                    a.found,
                )
            ]
            for a in app.advisories
        ],
    )


def version_section(
    name: str, app: AppEntry, version: str, entry: VersionEntry, anchor: str
) -> str:
    """One version: release facts, install command, per-check results, scan, changes."""
    vetting = entry.vetting
    upgrade = (
        f"from {e(vetting.upgrade.from_version)}: {e(vetting.upgrade.probes)} probes, "
        f"{e(vetting.upgrade.failed)} failed, {e(vetting.upgrade.downtime)} s downtime"
        if vetting.upgrade
        else "first release (no upgrade to prove)"
    )
    advisories = ", ".join(f"{e(a.id)} ({e(a.severity)})" for a in app.advisories_for(version))
    facts = [
        ("Released", f'<time datetime="{e(entry.released)}">{e(entry.released)}</time>'),
        ("Rebuilt", e(entry.rebuilt)),
        ("Channel", e(channel_of(entry))),
        ("Promoted to stable", e(getattr(entry, "promoted", "") or "")),
        ("Source commit", f"<code>{e(entry.commit)}</code>"),
        ("Content hash", f"<code>{e(entry.content_hash)}</code>"),
        ("Level", e(vetting.level)),
        ("Tests", e(vetting.tests.summary)),
        ("Upgrade", upgrade),
        ("Advisories", advisories),
        ("Revoked", f'<span class="revoked">{e(entry.revoked)}</span>' if entry.revoked else ""),
        ("Install", f"<code>commonshelf install {e(name)} --version {e(version)}</code>"),
    ]
    checks = _table(
        f"Checks of {e(app.title)} {e(version)}",
        ("Check", "Result", "Seconds"),
        [[e(check), _status(c.status), e(c.seconds)] for check, c in vetting.checks.items()],
    )
    return "\n".join(
        [
            f'<section class="version" id="{anchor}" aria-labelledby="{anchor}-title">',
            f'<h3 id="{anchor}-title">{e(app.title)} {e(version)}</h3>',
            "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts if v) + "</dl>",
            f"<h4>Checks</h4>{checks if vetting.checks else '<p>No checks recorded.</p>'}",
            f"<h4>Scan</h4>{_scan(vetting.scan)}",
            f"<h4>Changes</h4>{changes(entry.changes)}",
            "</section>",
        ]
    )
