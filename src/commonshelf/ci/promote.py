"""The release job: promote vetted recipe versions into the signed catalogue.

Only a version whose evidence matches the recipe's current content hash and
passed every gate is promoted. Its images are pushed to the project's registry
and pinned by digest, its compose file is rewritten with those pins, and the
catalogue, compose files and proxy stack are published as TUF targets. The
repository is written first (timestamp last, so readers always see a
consistent state), then `catalog.json` and `RELEASES.md`, each atomically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import docker
import msgspec
import semver
import yaml

from commonshelf.catalogue import html as catalogue_page
from commonshelf.catalogue import origin, reproducible
from commonshelf.catalogue.catalog import Catalog, ReleasedVersion
from commonshelf.catalogue.contract import (
    CheckOutcome,
    PlatformComponent,
    ScanSummary,
    ServiceImage,
    TargetRef,
    TestSummary,
    VersionEntry,
    Vetting,
)
from commonshelf.catalogue.notes import append_releases, release_notes
from commonshelf.ci import images
from commonshelf.ci.contract_for import runtime_for
from commonshelf.ci.evidence import Evidence, EvidenceStore
from commonshelf.ci.republish import publish_catalogue, resign_unchanged, signing_keys
from commonshelf.platform import vcs
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import ReleaseError
from commonshelf.platform.settings import Settings
from commonshelf.recipes.compose import load_compose
from commonshelf.recipes.model import Recipe, changelog_entry

PROXY = "proxy"


@dataclass
class ReleaseOutcome:
    released: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (app, why)
    new_keys: list[str] = field(default_factory=list)
    published: bool = False
    targets_version: int = 0


def pinned_compose(recipe: Recipe, pins: dict[str, str]) -> bytes:
    compose = recipe.compose()  # read through the bounded loader
    for service, ref in pins.items():
        compose["services"][service]["image"] = ref
    header = f"# {recipe.name} {recipe.version}: images pinned by digest by the release job.\n"
    return (header + yaml.safe_dump(compose, sort_keys=False)).encode()


def _push_all(
    client: docker.DockerClient, settings: Settings, recipe: Recipe, evidence: Evidence
) -> dict[str, ServiceImage]:
    if evidence.gates.build is None:
        raise ReleaseError(
            f"{recipe.name}: no build evidence.", f"run `invoke build {recipe.name}`."
        )
    pushed = {}
    for service, info in sorted(evidence.gates.build.images.items()):
        local = client.images.get(info.ref)
        if local.id != info.id:
            raise ReleaseError(
                f"{recipe.name}/{service}: the local image {info.ref} is not the one CI tested.",
                f"rebuild and retest with `invoke build {recipe.name} && invoke test "
                f"{recipe.name} && invoke scan {recipe.name}`.",
            )
        repository = images.local_repository(recipe, service)
        digest = images.push(client, info.ref, settings.registry, repository, recipe.image_tag)
        pushed[service] = ServiceImage(
            image=f"{settings.registry}/{repository}@{digest}", digest=digest
        )
    return pushed


def sbom_path(app: str, version: str, service: str) -> str:
    """The TUF target path of a released image's SBOM."""
    return f"sbom/{app}/{version}/{service}.cdx.json"


def sbom_files(store: EvidenceStore, recipe: Recipe, evidence: Evidence) -> dict[str, bytes]:
    """Each service's SBOM as the scan wrote it, checked against the digest in the evidence."""
    scan = evidence.gates.scan
    if scan is None or scan.empty_db:
        raise ReleaseError(
            f"{recipe.name}: its scan ran without a vulnerability DB (--allow-empty-db).",
            f"scan it again with the DB: `invoke scan {recipe.name}`.",
        )
    files: dict[str, bytes] = {}
    for service in sorted(evidence.gates.build.images if evidence.gates.build else {}):
        path = store.sbom(recipe.name, evidence.content_hash, service)
        data = path.read_bytes() if path.is_file() else b""
        if not data or "sha256:" + hashlib.sha256(data).hexdigest() != scan.sboms.get(service):
            raise ReleaseError(
                f"{recipe.name}: the SBOM of {service} ({path}) is missing or not the one "
                "its scan recorded.",
                f"scan it again: `invoke scan {recipe.name}`.",
            )
        files[service] = data
    return files


def _version_entry(
    recipe: Recipe,
    evidence: Evidence,
    pushed: dict[str, ServiceImage],
    commit: str,
    sbom_data: dict[str, bytes],
    released_at: str | None = None,
) -> VersionEntry:
    """The catalogue entry: the runtime contract (as the matrix ran it) and CI's proof."""
    tests, scan = evidence.gates.test, evidence.gates.scan
    if tests is None or scan is None:
        raise ReleaseError(f"{recipe.name}: evidence without test or scan gate.")
    sboms = scan.sboms
    return VersionEntry(
        channel="testing",  # `invoke promote` (or promote-due) moves it to stable
        released=released_at or now_iso(),
        commit=commit,
        content_hash=evidence.content_hash,
        runtime=runtime_for(recipe, pushed),
        vetting=Vetting(
            level=tests.level,
            checks={
                c.check: CheckOutcome(status=c.status, seconds=round(c.seconds, 1))
                for c in tests.matrix
            },
            upgrade=tests.upgrade,
            tests=TestSummary(
                passed=tests.tests_passed,
                failed=tests.tests_failed,
                skipped=tests.tests_skipped,
                summary=tests.summary,
            ),
            scan=ScanSummary(
                counts=scan.counts,
                fail_on=scan.fail_on,
                summary=scan.summary,
                vuln_db=scan.vuln_db,
                blocking=scan.blocking,
                waived=scan.waived,
                trivy_version=scan.trivy_version,
                db_digest=scan.db_digest,
                db_built=scan.db_built,
                sboms={
                    service: TargetRef(
                        path=sbom_path(recipe.name, recipe.version, service),
                        sha256=sboms[service].removeprefix("sha256:"),
                        length=len(data),
                    )
                    for service, data in sorted(sbom_data.items())
                },
            ),
        ),
        changes=changelog_entry(recipe.path, recipe.version) or "",
    )


def _release_proxy(
    client: docker.DockerClient,
    settings: Settings,
    catalog: Catalog,
    base_tag: str,
    commit: str,
    targets: dict[str, bytes],
) -> bool:
    """Build, push and pin the installation proxy when its definition changed."""
    proxy = images.build_platform(
        client, settings, PROXY, base_tag, revision=commit, source=vcs.source_url(settings.root)
    )
    current = catalog.platform.get(PROXY)
    if current is not None and current.version == proxy.version:
        return False
    repository = f"commonshelf/{PROXY}"
    digest = images.push(client, proxy.ref, settings.registry, repository, proxy.version)
    image = f"{settings.registry}/{repository}@{digest}"
    compose = load_compose(settings.shared_dir / PROXY / "compose.yml")
    compose["services"][PROXY]["image"] = image
    target = f"platform/{PROXY}/compose.yml"
    targets[target] = yaml.safe_dump(compose, sort_keys=False).encode()
    catalog.platform = {
        **catalog.platform,
        PROXY: PlatformComponent(version=proxy.version, image=image, digest=digest, compose=target),
    }
    return True


def release(
    settings: Settings,
    client: docker.DockerClient,
    recipes: list[Recipe],
    base_tag: str,
    say: Callable[[str], None] = print,
    *,
    rebuilt: ReleasedVersion | None = None,
) -> ReleaseOutcome:
    """Promote what passed. `rebuilt` marks a version being rebuilt from the commit it was
    released from: its entry keeps that commit and first release time, and adds no notes."""
    outcome = ReleaseOutcome()
    keys, outcome.new_keys = signing_keys(settings)
    # a configured published repository (COMMONSHELF_PUBLISHED_URL/_DIR), verified against the
    # pinned root, becomes public/: the release appends to it and never starts a new chain
    published = origin.sync(settings, say)
    catalog = origin.base_catalog(settings, published)
    when = reproducible.source_date(settings.root)  # not the clock: same inputs, same bytes
    # (a history rebuild starts a repository beside the other apps' entries, which it keeps
    # as they were: it rebuilds only the apps being vetted)
    if (
        catalog.apps
        and rebuilt is None
        and not (settings.public_dir / "metadata" / "1.root.json").exists()
    ):
        raise ReleaseError(
            f"{settings.catalog_path} lists releases but {settings.public_dir} holds no "
            "repository.",
            "run `invoke pipeline`, which rebuilds the released versions from their commits, "
            "or restore public/ from the publishing host.",
        )
    store = EvidenceStore(settings.evidence_dir)
    commit = rebuilt.commit if rebuilt else vcs.revision(settings.root)
    targets: dict[str, bytes] = {}
    notes: list[str] = []
    for recipe in recipes:
        content = recipe.content_hash()
        released = catalog.versions(recipe.name)
        if recipe.version in released:
            if released[recipe.version].content_hash == content:
                outcome.unchanged.append((recipe.name, recipe.version))
            else:
                outcome.refused.append(
                    (
                        recipe.name,
                        f"changed since {recipe.version} was "
                        "released; bump its version (`invoke bump`)",
                    )
                )
            continue
        latest = catalog.latest(recipe.name)
        if latest and semver.Version.parse(recipe.version) <= semver.Version.parse(latest):
            outcome.refused.append(
                (recipe.name, f"{recipe.version} is not newer than the released {latest}")
            )
            continue
        evidence = store.load(recipe.name, recipe.version, content)
        if not evidence.passed:
            outcome.refused.append((recipe.name, "; ".join(evidence.missing_or_failed())))
            continue
        level = evidence.gates.test.level if evidence.gates.test else 0
        if level < settings.min_level:
            outcome.refused.append(
                (
                    recipe.name,
                    f"level {level} is under the minimum level {settings.min_level} "
                    "(COMMONSHELF_MIN_LEVEL); `invoke test "
                    f"{recipe.name}` shows which check stopped it",
                )
            )
            continue
        try:
            sboms = sbom_files(store, recipe, evidence)
        except ReleaseError as exc:
            outcome.refused.append((recipe.name, f"{exc.what} {exc.fix}"))
            continue
        say(f"Releasing {recipe.name} {recipe.version}")
        pushed = _push_all(client, settings, recipe, evidence)
        entry = _version_entry(
            recipe, evidence, pushed, commit, sboms, rebuilt.released if rebuilt else when
        )
        for service, ref in entry.vetting.scan.sboms.items():
            targets[ref.path] = sboms[service]
        if rebuilt:
            entry = msgspec.structs.replace(
                entry,
                rebuilt=when,
                channel=rebuilt.channel,
                promoted=rebuilt.promoted,
                revoked=rebuilt.revoked,
            )
        targets[entry.runtime.compose] = pinned_compose(
            recipe, {s: p.image for s, p in pushed.items()}
        )
        catalog.add_version(
            recipe.name, recipe.title, recipe.description, recipe.category, recipe.version, entry
        )
        outcome.released.append((recipe.name, recipe.version))
        images_line = ", ".join(f"{s} `{p.digest[:19]}…`" for s, p in pushed.items())
        upgrade = entry.vetting.upgrade
        probed = (
            f"; upgrade from {upgrade.from_version} on Swarm: {upgrade.probes} probes, "
            f"{upgrade.failed} failed"
            if upgrade
            else ""
        )
        notes.append(
            f"- **{recipe.title}** `{recipe.name}` {recipe.version} — tests: "
            f"{entry.vetting.tests.summary}{probed}; scan: {entry.vetting.scan.summary}; "
            f"images: {images_line}"
        )
        notes.extend(f"  {line}" for line in entry.changes.splitlines() if line.strip())
    if _release_proxy(client, settings, catalog, base_tag, commit, targets):
        notes.append(f"- Installation proxy {catalog.platform[PROXY].version}")
    if targets:
        catalog.generated = when
        catalog.commit = commit
        outcome.targets_version = publish_catalogue(settings, keys, catalog, targets)
        outcome.published = True
        if not rebuilt:
            append_releases(settings, release_notes(catalog, notes, outcome.targets_version))
    else:  # nothing new: re-sign what is near expiry; the page is written again (a synced
        # public/ holds only the TUF files)
        result = resign_unchanged(settings, keys, catalog)
        outcome.targets_version = result.targets_version
        catalogue_page.write_page(settings.public_dir, Catalog.load(settings.catalog_path))
    return outcome
