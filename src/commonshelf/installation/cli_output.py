"""How `commonshelf` shows each command's result: rich tables for people, JSON for machines,
plain lines for the unattended `run` (journald adds the time)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import msgspec
from rich.table import Table

from commonshelf.installation import journal, updates
from commonshelf.installation.backup import Backup
from commonshelf.installation.policy import AppPolicy, Decision
from commonshelf.platform import console
from commonshelf.platform.errors import CommonshelfError

if TYPE_CHECKING:
    from commonshelf.installation.agent import Agent
    from commonshelf.installation.portability import Exported
    from commonshelf.installation.views import AppInfo


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
    )
    timer = enable_timer(agent.home, _executable()) if args.enable_timer else ""
    if args.json:
        console.print_json({**msgspec.to_builtins(config), "timer": timer})
        return
    console.out.print(f"Subscribed to {config.repository}; proxy on port {config.http_port}.")
    if timer:
        console.out.print(timer)


def _executable() -> Any:
    import shutil
    import sys
    from pathlib import Path

    found = shutil.which("commonshelf")
    return Path(found) if found else Path(sys.executable).with_name("commonshelf")


def apps(agent: Agent, as_json: bool) -> None:
    catalog = agent.catalog()
    installed = agent.installed()
    rows: list[dict[str, object]] = []
    for name, entry in sorted(catalog.apps.items()):
        latest = catalog.latest(name)
        rows.append(
            {
                "app": name,
                "title": entry.title,
                "latest": latest,
                "level": entry.versions[latest].vetting.level if latest else None,
                "installed": installed[name].version if name in installed else None,
                "description": entry.description,
            }
        )
    if as_json:
        console.print_json(rows)
        return
    table = Table("app", "latest", "level", "installed", "description", title="Catalogue")
    for row in rows:
        level = "" if row["level"] is None else str(row["level"])
        table.add_row(
            str(row["app"]),
            str(row["latest"] or ""),
            level,
            str(row["installed"] or "-"),
            str(row["description"]),
        )
    console.out.print(table)


def info(view: AppInfo, as_json: bool) -> None:
    if as_json:
        console.print_json(msgspec.to_builtins(view))
        return
    out = console.out
    out.print(f"[bold]{view.title}[/bold] ({view.app}, {view.category}): {view.description}")
    out.print(
        f"Installed: {view.installed} at {view.url}" if view.installed else "Not installed here."
    )
    versions = Table("version", "level", "released", "migration", "here", title="Versions")
    for v in view.versions:
        versions.add_row(v.version, str(v.level), v.released, v.migration, v.allowed or "ok")
    out.print(versions)
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


def plan(rows: list[tuple[str, str, Decision]], as_json: bool) -> None:
    if as_json:
        console.print_json(
            [
                {"app": app, "running": running, "target": d.target, "held": d.held}
                for app, running, d in rows
            ]
        )
        return
    table = Table("app", "running", "would move to", "held", title="Updates")
    for app, running, d in rows:
        held = "; ".join(f"{v} {why}" for v, why in d.held.items())
        table.add_row(app, running, d.target or "-", held or "-")
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
    the last, with app "" and healthy null."""
    statuses = agent.status()
    if as_json:
        console.print_json(
            [{**asdict(s), "healthy": s.healthy if s.app else None} for s in statuses]
        )
        return
    table = Table("app", "version", "latest", "health", "url", "last", title="Installed apps")
    for s in statuses:
        if s.app:
            health = "[green]healthy[/green]" if s.healthy else "[red]unhealthy[/red]"
            table.add_row(s.app, s.version, s.latest or "?", health, s.url, s.last)
    console.out.print(table)
    for s in statuses:
        if not s.app:
            line = f"Installation ({s.outcome} at {s.at}): {s.last}"
            console.out.print(line, soft_wrap=True, markup=False)


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
