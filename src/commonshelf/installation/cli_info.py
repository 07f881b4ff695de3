"""How `commonshelf info` and `sbom` show an app: its versions with their channel, level and
advisories, the advisories affecting the running version, its SBOMs, settings and policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from rich.table import Table
from rich.text import Text

from commonshelf.installation.cli_output import following
from commonshelf.platform import console

if TYPE_CHECKING:
    from commonshelf.installation.agent import Agent
    from commonshelf.installation.sbom import SbomFile
    from commonshelf.installation.views import AppInfo


def info(view: AppInfo, as_json: bool, agent: Agent) -> None:
    """The app's entry; `channel` is the one this installation follows, and each version's
    own channel shows in the versions table."""
    if as_json:
        console.print_json(
            {
                **msgspec.to_builtins(view),
                "channel": agent.channel(),
                "catalogue": agent.catalog_target,
            }
        )
        return
    channels = {v: e.channel for v, e in agent.catalog().versions(view.app).items()}
    out = console.out
    out.print(f"[bold]{view.title}[/bold] ({view.app}, {view.category}): {view.description}")
    out.print(
        f"Installed: {view.installed} at {view.url}" if view.installed else "Not installed here."
    )
    versions = Table(
        "version",
        "channel",
        "level",
        "released",
        "migration",
        "here",
        "advisories",
        title=f"Versions ({following(agent)})",
    )
    for v in view.versions:
        versions.add_row(
            v.version,
            channels.get(v.version, ""),
            str(v.level),
            v.released,
            v.migration,
            v.allowed or "ok",
            Text(", ".join(v.advisories) or "-"),
        )
    out.print(versions)
    if view.installed:
        _advisories(view)
    _sboms(view)
    if view.settings:
        settings = Table("setting", "value", "default", "description", title="Settings")
        for s in view.settings:
            settings.add_row(
                s.name, s.value if s.value is not None else "-", s.default, s.description
            )
        out.print(settings)
    out.print("Data: " + ("; ".join(view.data) or "none"))
    window = view.policy.window or "any time"
    out.print(f"Policy: automatic updates up to {view.policy.auto} versions, {window}.")
    for version, why in view.policy.bad.items():
        out.print(f"Not retried: {version} ({why})")
    out.print(
        f"Backups: {len(view.backups)}" + (f", newest {view.backups[-1]}" if view.backups else "")
    )
    if view.last:
        out.print(f"Last: {view.last}")


def _advisories(view: AppInfo) -> None:
    out = console.out
    if not view.advisories:
        out.print(f"Advisories: none affects {view.installed}.")
        return
    table = Table(
        "advisory",
        "severity",
        "package",
        "package fix",
        "fixed in",
        "what to do",
        title=f"Advisories affecting {view.app} {view.installed}",
    )
    for a in view.advisories:
        title = f"\n{a.title}" if a.title else ""
        cells = (a.id + title, a.severity.lower(), a.package, a.package_fixed or "none yet")
        table.add_row(*map(Text, (*cells, a.fixed_in or "none yet", a.action)))
    out.print(table)


def _sboms(view: AppInfo) -> None:
    out = console.out
    rows = [(v.version, s) for v in view.versions for s in v.sboms]
    if not rows:
        out.print("SBOMs: none published for these versions.")
        return
    table = Table(
        "version", "service", "target", "download", title="SBOMs (CycloneDX, signed TUF targets)"
    )
    for version, s in rows:
        table.add_row(*map(Text, (version, s.service, s.path, s.command)))
    out.print(table)


def sbom_written(found: SbomFile, out: str, as_json: bool) -> None:
    if as_json:
        console.print_json({**msgspec.to_builtins(found), "out": out})
        return
    console.out.print(
        f"Wrote the SBOM of {found.app} {found.version} ({found.service}, {found.length} "
        f"bytes, sha256 {found.sha256}) to {out}; it matches the signed target {found.path}.",
        soft_wrap=True,
        markup=False,
    )
