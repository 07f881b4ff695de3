"""After release: every released version's SBOM against today's DB (`invoke rescan`).

A vulnerability published after a version was released is found without rebuilding or
re-scanning its images: trivy reads the version's SBOM (a TUF target published with it)
against the vulnerability DB pulled from the registry. What the scan policy would block
(less the recipe's live waivers) becomes an advisory on the app's catalogue entry, naming
the affected versions and the first released version that fixes it, and a newly signed
catalogue carries it to installations. Versions released before SBOMs were published get
theirs now, made from their image in the registry by digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import semver

from commonshelf.catalogue import origin, reproducible
from commonshelf.catalogue.catalog import first_fix
from commonshelf.catalogue.contract import Advisory, AppEntry, TargetRef, VersionEntry
from commonshelf.catalogue.notes import append_releases
from commonshelf.ci import image_scan, scan, scan_policy, vulndb
from commonshelf.ci.promote import sbom_path
from commonshelf.ci.republish import publish_catalogue, signing_keys
from commonshelf.platform import trivy
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import ReleaseError
from commonshelf.platform.settings import Settings


@dataclass
class RescanOutcome:
    checked: list[tuple[str, str]] = field(default_factory=list)
    backfilled: list[tuple[str, str]] = field(default_factory=list)  # SBOMs made now
    advisories: dict[str, tuple[Advisory, ...]] = field(default_factory=dict)
    new: list[tuple[str, Advisory]] = field(default_factory=list)  # not in the last catalogue
    published: bool = False
    targets_version: int = 0
    db: str = ""


def _published_target(public: Path, ref: TargetRef) -> bytes:
    """A published target's bytes, checked against its reference."""
    folder, _, name = ref.path.rpartition("/")
    path = public / "targets" / folder / f"{ref.sha256}.{name}"
    data = path.read_bytes() if path.is_file() else b""
    if len(data) != ref.length or hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ReleaseError(
            f"The published {ref.path} ({path}) is missing or altered.",
            "restore public/ from the publishing host (never edit a published file).",
        )
    return data


def _sbom_from_registry(image: str, cache: Path) -> bytes:
    """A released image's SBOM, made from the registry by digest (nothing is rebuilt)."""
    with tempfile.TemporaryDirectory() as work:
        report, sbom = Path(work) / "report.json", Path(work) / "sbom.cdx.json"
        trivy.run(
            "image",
            "--image-src",
            "remote",
            *(["--insecure"] if vulndb.is_loopback(image) else []),
            "--scanners",
            "vuln",
            "--list-all-pkgs",
            "--format",
            "json",
            "--output",
            str(report),
            image,
            cache_dir=cache,
            target=image,
            fix="check that the registry holds the released image.",
        )
        trivy.convert(report, sbom, "cyclonedx")
        return sbom.read_bytes()


def _advisories(
    app: AppEntry, findings: dict[str, list[scan.Finding]], today: str
) -> tuple[Advisory, ...]:
    """Findings per version, grouped by vulnerability id into the app's advisories."""
    previous = {a.id: a for a in app.advisories}
    by_id: dict[str, list[tuple[str, scan.Finding]]] = {}
    for version, found in findings.items():
        for finding in found:
            by_id.setdefault(finding.id, []).append((version, finding))
    released = [v for v, e in app.versions.items() if not e.revoked]
    out = []
    for vuln_id, hits in sorted(by_id.items()):
        affected = {version for version, _ in hits}
        first = hits[0][1]
        out.append(
            Advisory(
                id=vuln_id,
                severity=first.severity,
                package=", ".join(sorted({f.package for _, f in hits if f.package})),
                affected=tuple(sorted(affected, key=semver.Version.parse)),
                fixed_in=first_fix(affected, released),
                package_fixed=first.fixed,
                title=first.title,
                found=previous[vuln_id].found if vuln_id in previous else today,
            )
        )
    return tuple(out)


def rescan(settings: Settings, say: Callable[[str], None] = print) -> RescanOutcome:
    """Check every released version against the current DB; publish what changed."""
    outcome = RescanOutcome()
    published = origin.sync(settings, say)  # a configured published repository is extended
    catalog = origin.base_catalog(settings, published)
    public = settings.public_dir
    if catalog.apps and not (public / "metadata" / "1.root.json").exists():
        raise ReleaseError(
            f"{public} holds no published repository to rescan.",
            "run `invoke pipeline` (or restore public/ from the publishing host) first.",
        )
    source = vulndb.ready(settings)
    outcome.db = source.describe()
    slot, lock = scan.claim_worker_slot(settings.trivy_cache, "rescan")
    policy = scan_policy.load_policy(settings.shared_dir)
    today = dt.datetime.now(dt.UTC).date()
    targets: dict[str, bytes] = {}
    try:
        cache = scan.worker_cache(settings.trivy_cache, slot)
        apps = dict(catalog.apps)
        for name, app in sorted(catalog.apps.items()):
            waivers = scan_policy.load_waivers(settings.recipes_dir / name)
            versions = dict(app.versions)
            found: dict[str, list[scan.Finding]] = {}
            for version, entry in sorted(app.versions.items()):
                if entry.revoked:
                    continue
                entry, made = _with_sboms(name, version, entry, cache)
                if made:
                    versions[version] = entry
                    targets.update(made)
                    outcome.backfilled.append((name, version))
                    say(f"SBOM made for {name} {version} from its images in the registry")
                hits: list[scan.Finding] = []
                for service, ref in sorted(entry.vetting.scan.sboms.items()):
                    data = made.get(ref.path) or _published_target(public, ref)
                    with tempfile.TemporaryDirectory() as work:
                        sbom = Path(work) / f"{service}.cdx.json"
                        sbom.write_bytes(data)
                        raw = image_scan.sbom_findings(sbom, cache_dir=cache)
                    verdict = scan_policy.judge(raw, policy, waivers, today)
                    hits += [
                        b.finding for b in verdict.blocking if b.finding.kind == "vulnerability"
                    ]
                if hits:
                    found[version] = hits
                outcome.checked.append((name, version))
            updated = msgspec.structs.replace(app, versions=versions)
            updated = msgspec.structs.replace(
                updated, advisories=_advisories(updated, found, now_iso()[:10])
            )
            known = {a.id for a in app.advisories}
            outcome.new += [(name, a) for a in updated.advisories if a.id not in known]
            outcome.advisories[name] = updated.advisories
            apps[name] = updated
    finally:
        lock.close()
    if apps == catalog.apps:
        say("Nothing changed: every released version is as the catalogue already says.")
        return outcome
    catalog.apps = apps
    catalog.generated = reproducible.source_date(settings.root)
    keys, _ = signing_keys(settings)
    outcome.targets_version = publish_catalogue(settings, keys, catalog, targets)
    outcome.published = True
    append_releases(settings, _notes(outcome, outcome.targets_version))
    return outcome


def _with_sboms(
    app: str, version: str, entry: VersionEntry, cache: Path
) -> tuple[VersionEntry, dict[str, bytes]]:
    """The entry with an SBOM reference for every service, and the SBOMs made for it."""
    missing = sorted(set(entry.runtime.services) - set(entry.vetting.scan.sboms))
    if not missing:
        return entry, {}
    made: dict[str, bytes] = {}
    refs = dict(entry.vetting.scan.sboms)
    for service in missing:
        data = _sbom_from_registry(entry.runtime.services[service].image, cache)
        path = sbom_path(app, version, service)
        refs[service] = TargetRef(
            path=path, sha256=hashlib.sha256(data).hexdigest(), length=len(data)
        )
        made[path] = data
    scanned = msgspec.structs.replace(entry.vetting.scan, sboms=refs)
    vetting = msgspec.structs.replace(entry.vetting, scan=scanned)
    return msgspec.structs.replace(entry, vetting=vetting), made


def _notes(outcome: RescanOutcome, targets_version: int) -> str:
    """A RELEASES.md section: what the rescan found and where it is fixed."""
    lines = [f"## Security rescan — {now_iso()[:10]} (targets v{targets_version})", ""]
    lines.append(f"Every released version's SBOM checked against {outcome.db}.")
    lines.append("")
    for app, advisory in outcome.new:
        fix = f"fixed in {advisory.fixed_in}" if advisory.fixed_in else "no fixed version yet"
        lines.append(
            f"- **{app}** {advisory.id} ({advisory.severity.lower()}, {advisory.package}): "
            f"affects {', '.join(advisory.affected)}; {fix}."
        )
    if not outcome.new:
        lines.append("- No new advisories.")
    if outcome.backfilled:
        made = ", ".join(f"{a} {v}" for a, v in outcome.backfilled)
        lines.append(f"- SBOMs published for versions released before SBOMs were: {made}.")
    return "\n".join(lines) + "\n"
