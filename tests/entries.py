"""Factories for what tests build by hand (catalogue entries, seated installations): the
fields a test cares about, plain defaults for the rest."""

from __future__ import annotations

from pathlib import Path

from commonshelf.catalogue.contract import (
    Channel,
    MainService,
    Migration,
    Runtime,
    ScanSummary,
    ServiceImage,
    TargetRef,
    VersionEntry,
    Vetting,
)
from commonshelf.installation.state import InstallationConfig, Installed, write_record


def version_entry(
    *,
    released: str = "2026-11-01T00:00:00Z",
    commit: str = "0" * 40,
    content_hash: str = "h",
    compose: str = "c.yml",
    services: dict[str, ServiceImage] | None = None,
    level: int = 7,
    sboms: dict[str, TargetRef] | None = None,
    manual: bool = False,
    channel: Channel = "stable",
    revoked: str = "",
) -> VersionEntry:
    """A released version: level `level`, one main service `app` on port 80."""
    return VersionEntry(
        released=released,
        commit=commit,
        content_hash=content_hash,
        runtime=Runtime(
            compose=compose,
            services=services or {},
            main=MainService(service="app", port=80, health="/"),
            migration=Migration(kind="manual", note="export first") if manual else Migration(),
        ),
        vetting=Vetting(level=level, scan=ScanSummary(sboms=sboms))
        if sboms
        else Vetting(level=level),
        channel=channel,
        revoked=revoked,
    )


def seat_installation(home: Path, repository: str, app: str, version: str) -> Path:
    """An installation's config and the record the deployer writes for `app` at `version`
    (nothing deployed: for commands that read records and the catalogue only)."""
    write_record(home / "config.json", InstallationConfig(repository=repository))
    write_record(
        home / "apps" / f"{app}.json",
        Installed(
            app=app,
            version=version,
            stack=app,
            url=f"http://{app}.localhost/",
            images={},
            main_service="app",
            main_port=80,
            installed_at="2026-11-02T00:00:00Z",
        ),
    )
    return home
