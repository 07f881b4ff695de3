"""A released version's SBOMs (CycloneDX, one per service), fetched through TUF.

The release job publishes each SBOM as a target of the signed repository and names it,
with its length and sha256, in the version's catalogue entry. `commonshelf sbom` reads it
like any target (the Subscription checks it against signed targets metadata) and checks it
once more against the catalogue's reference, so the file an operator hands to a scanner is
the one CI scanned. Read-only: it takes no lock.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import msgspec

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import TargetRef
from commonshelf.platform.errors import CommonshelfError, TrustError

if TYPE_CHECKING:
    from commonshelf.installation.agent import Agent


class SbomView(msgspec.Struct, frozen=True, kw_only=True):
    """Where one service's SBOM is published, and the command that downloads it."""

    service: str
    path: str  # the TUF target path
    sha256: str
    length: int
    command: str


def views(app: str, version: str, sboms: dict[str, TargetRef]) -> list[SbomView]:
    return [
        SbomView(
            service=service,
            path=ref.path,
            sha256=ref.sha256,
            length=ref.length,
            command=f"commonshelf sbom {app} --version {version} --service {service}",
        )
        for service, ref in sorted(sboms.items())
    ]


class SbomFile(msgspec.Struct, frozen=True, kw_only=True):
    app: str
    version: str
    service: str
    path: str
    sha256: str
    length: int


def locate(
    catalog: Catalog,
    app: str,
    version: str | None,
    service: str | None,
    running: str | None = None,
) -> SbomFile:
    """The SBOM to fetch: of `version` (default: the version running here, else the newest)
    and `service` (default: the main service, else the only one)."""
    version, entry = catalog.version(app, version or running)
    sboms = entry.vetting.scan.sboms
    if not sboms:
        with_one = [v for v, e in catalog.versions(app).items() if e.vetting.scan.sboms]
        where = f"versions with one: {', '.join(sorted(with_one))}" if with_one else "none has one"
        raise CommonshelfError(
            f"{app} {version} has no SBOM in the catalogue (released before SBOMs were "
            f"published; {where}).",
            f"pass --version with a version `commonshelf info {app}` lists an SBOM for, or "
            "ask the publisher to re-release it.",
        )
    if service is None:
        main = entry.runtime.main.service
        service = main if main in sboms else next(iter(sboms)) if len(sboms) == 1 else None
    if service is None or service not in sboms:
        named = f"{service!r} is not one of them" if service else "name one"
        raise CommonshelfError(
            f"{app} {version} has SBOMs for the services {', '.join(sorted(sboms))}; {named}.",
            f"add --service with one of {', '.join(sorted(sboms))}.",
        )
    ref = sboms[service]
    return SbomFile(
        app=app,
        version=version,
        service=service,
        path=ref.path,
        sha256=ref.sha256,
        length=ref.length,
    )


def fetch(
    agent: Agent, app: str, version: str | None, service: str | None
) -> tuple[SbomFile, bytes]:
    """The SBOM's verified bytes: a signed target of the repository (TUF checks its length
    and hash against the signed targets metadata) that also matches the catalogue's
    reference."""
    catalog = agent.catalog()
    record = agent.installed().get(app)
    found = locate(catalog, app, version, service, record.version if record else None)
    data = agent.subscription().fetch(found.path)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != found.length or digest != found.sha256:
        raise TrustError(
            f"{found.path} is signed, but is not the SBOM the catalogue names for {app} "
            f"{found.version} ({len(data)} bytes, sha256 {digest[:12]}…; the catalogue says "
            f"{found.length} bytes, {found.sha256[:12]}…); nothing was written.",
            "tell the publisher: the catalogue and its targets were published apart "
            "(`invoke release` publishes both).",
        )
    return found, data
