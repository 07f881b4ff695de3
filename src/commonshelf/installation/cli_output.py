"""How `commonshelf` shows each command's result: rich tables for people, JSON for machines,
plain lines for the unattended `run` (journald adds the time)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import msgspec
from rich.table import Table

from commonshelf.catalogue.catalog import FULL_TARGET
from commonshelf.installation import journal, updates, views
from commonshelf.installation.backup import Backup
from commonshelf.installation.policy import AppPolicy, Decision
from commonshelf.platform import console
from commonshelf.platform.errors import CommonshelfError

if TYPE_CHECKING:
    from commonshelf.installation.agent import Agent
    from commonshelf.installation.portability import Exported


def init(agent: Agent, args: argparse.Namespace) -> None:
    from commonshelf.installation.timer import enable_timer

    try:
        root = args.root.read_bytes()
    except OSError as exc:
        raise CommonshelfError(
            f"Cannot read the root metadata {args.root}: {exc.strerror}.",
            "pass the repository's 1.root.json, obtained out of band.",
        ) from None
    config = agent.init(
        args.repository,
        root,
        domain=args.domain,
        http_port=args.http_port,
        namespace=args.namespace,
        min_level=args.min_level,
        force=args.force,
        channel=args.channel,
    )
    timer = enable_timer(agent.home, _executable()) if args.enable_timer else ""
    if args.json:
        console.print_json(
            {**msgspec.to_builtins(config), "catalogue": agent.catalog_target, "timer": timer}
        )
        return
    console.out.print(
        f"Subscribed to {config.repository} ({following(agent)}); proxy on port {config.http_port}."
    )
    if timer:
        console.out.print(timer)


def following(agent: Agent) -> str:
    """The channel the installation follows, and whether the repository offers it yet (a
    repository published before channels signs only its full catalogue, which is read then)."""
    channel = agent.channel()
    if agent.catalog_target == FULL_TARGET:
        return (
            f"channel {channel}, but the repository publishes no channel catalogues yet: every "
            f"version in its {FULL_TARGET} is offered until it does"
        )
    return f"channel {channel}"


def _executable() -> Any:
    import shutil
    import sys
    from pathlib import Path

    found = shutil.which("commonshelf")
    return Path(found) if found else Path(sys.executable).with_name("commonshelf")


def apps(agent: Agent, as_json: bool) -> None:
    """The catalogue; installed apps carry the count and worst severity of the advisories
    affecting the version they run (JSON: `advisories` and `worst`, null when not installed)."""
    catalog = agent.catalog()
    installed = agent.installed()
    exposed = views.exposures(agent) or {}
    rows: list[dict[str, object]] = []
    for name, entry in sorted(catalog.apps.items()):
        latest = catalog.latest(name)
        found = exposed.get(name)
        rows.append(
            {
                "app": name,
                "title": entry.title,
                "latest": latest,
                "level": entry.versions[latest].vetting.level if latest else None,
                "channel": entry.versions[latest].channel if latest else None,
                "installed": installed[name].version if name in installed else None,
                "advisories": found.count if found else None,
                "worst": (found.worst or None) if found else None,
                "description": entry.description,
            }
        )
    if as_json:
        console.print_json(rows)
        return
    table = Table(
        "app", "latest", "level", "installed", "advisories", "description", title="Catalogue"
    )
    for row in rows:
        level = "" if row["level"] is None else str(row["level"])
        found = exposed.get(str(row["app"]))
        testing = " (testing)" if row["channel"] == "testing" else ""
        table.add_row(
            str(row["app"]),
            str(row["latest"] or "") + testing,
            level,
            str(row["installed"] or "-"),
            _marked(found.short()) if found else "",
            str(row["description"]),
        )
    console.out.print(table)
    console.out.print(f"Following {following(agent)}.", soft_wrap=True, markup=False)


def _marked(short: str) -> str:
    """An exposure's short form, in red when something affects the running version."""
    return short if short == "none" else f"[red]{short}[/red]"


def plan(rows: list[tuple[str, str, Decision]], as_json: bool) -> None:
    if as_json:
        console.print_json(
            [
                {"app": app, "running": running, "target": d.target, "held": d.held, "why": d.why}
                for app, running, d in rows
            ]
        )
        return
    table = Table("app", "running", "would move to", "held", title="Updates")
    for app, running, d in rows:
        held = "; ".join(f"{v} {why}" for v, why in d.held.items())
        target = f"{d.target} ({d.why})" if d.target and d.why else d.target or "-"
        table.add_row(app, running, target, held or "-")
    console.out.print(table)


def events(found: list[journal.Event], as_json: bool, nothing: str) -> None:
    if as_json:
        console.print_json([msgspec.to_builtins(e) for e in found])
        return
    if not found and nothing:
        console.out.print(nothing)
    for event in found:
        console.out.print(event.sentence)


def status(agent: Agent, as_json: bool) -> None:
    """The apps' table, then one line about the installation itself when it has news (e.g.
    the repository refused the last poll). JSON: one object per app; the installation's is
    the last, with app "" and healthy null. Each app's `advisories` affect the version it
    runs (null when the catalogue cannot be verified now), `worst` is their worst severity."""
    statuses = agent.status()
    exposed = views.exposures(agent)
    if as_json:
        rows = []
        for s in statuses:
            found = exposed.get(s.app) if exposed is not None and s.app else None
            rows.append(
                {
                    **asdict(s),
                    "healthy": s.healthy if s.app else None,
                    "advisories": msgspec.to_builtins(found.advisories) if found else None,
                    "worst": (found.worst or None) if found else None,
                    "channel": agent.channel(),
                    "catalogue": agent.catalog_target or None,  # None: not verified now
                }
            )
        console.print_json(rows)
        return
    table = Table(
        "app", "version", "latest", "health", "advisories", "url", "last", title="Installed apps"
    )
    for s in statuses:
        if s.app:
            health = "[green]healthy[/green]" if s.healthy else "[red]unhealthy[/red]"
            found = exposed.get(s.app) if exposed is not None else None
            short = _marked(found.short()) if found else "?"
            table.add_row(s.app, s.version, s.latest or "?", health, short, s.url, s.last)
    console.out.print(table)
    for found in (exposed or {}).values():
        for a in found.advisories:
            line = f"{found.app} {found.version}: {a.summary}: {a.action}"
            console.out.print(line, soft_wrap=True, markup=False)
    for s in statuses:
        if not s.app:
            line = f"Installation ({s.outcome} at {s.at}): {s.last}"
            console.out.print(line, soft_wrap=True, markup=False)
    console.out.print(f"Following {following(agent)}.", soft_wrap=True, markup=False)


def backup_made(app: str, backup_id: str | None, as_json: bool) -> None:
    if as_json:
        console.print_json({"app": app, "backup": backup_id})
    elif backup_id:
        console.out.print(f"Backed up {app}: {backup_id}")
    else:
        console.out.print(f"{app} keeps no data; there is nothing to back up.")


def backups(app: str, found: list[tuple[str, Backup]], as_json: bool) -> None:
    if as_json:
        console.print_json([{"id": i, **msgspec.to_builtins(b)} for i, b in found])
        return
    if not found:
        console.out.print(f"{app} has no backups.")
        return
    table = Table("backup", "version", "reason", "volumes", title=f"Backups of {app}")
    for backup_id, made in found:
        table.add_row(backup_id, made.version, made.reason, ", ".join(made.volumes))
    console.out.print(table)


def exported(result: Exported, as_json: bool) -> None:
    if as_json:
        console.print_json(msgspec.to_builtins(result))
    else:
        console.out.print(
            f"Exported {len(result.apps)} app(s) to {result.path} ({result.size} bytes)."
        )


def policy(app: str, chosen: AppPolicy, as_json: bool) -> None:
    if as_json:
        console.print_json({"app": app, **msgspec.to_builtins(chosen)})
    else:
        window = chosen.window or "any time"
        console.out.print(f"{app}: automatic updates up to {chosen.auto} versions, {window}.")


def unattended(agent: Agent, as_json: bool) -> int:
    """`commonshelf run`: one poll, then what policy allows; plain lines, exit 1 when an app
    needs attention (an update failed and was rolled back, or an app is down). A poll the
    repository fails is noted in the history (once while it keeps failing the same way), and
    so is the first poll that works again; both under the lock, and nothing at all when
    another agent holds it (this one changed nothing)."""
    with agent.holding("run"):
        last = journal.last(agent.home, "")
        try:
            found = updates.update(agent, None, automatic=True)
        except CommonshelfError as exc:
            event = journal.Event(app="", action="poll", outcome="failed", sentence=str(exc))
            if last is None or last.sentence != event.sentence:
                agent.note(event)
            raise
        if last is not None and last.action == "poll" and last.outcome == "failed":
            agent.note(
                journal.Event(
                    app="",
                    action="poll",
                    outcome="done",
                    sentence=f"Polls work again: {agent.config().repository} answers and "
                    f"verifies (they failed from {last.at}).",
                )
            )
    if as_json:
        console.print_json([msgspec.to_builtins(e) for e in found])
    else:
        for event in found:
            print(event.sentence, flush=True)
        if not found:
            print(f"{len(agent.installed())} app(s) up to date.", flush=True)
    return 1 if any(e.needs_attention for e in found) else 0
