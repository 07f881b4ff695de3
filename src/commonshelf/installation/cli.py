"""`commonshelf`: the command an installation's owner runs (init, apps, install, update, status)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from pathlib import Path

import msgspec
from rich.table import Table

from commonshelf.installation.agent import DEFAULT_HOME, Agent
from commonshelf.platform import console
from commonshelf.platform.errors import CommonshelfError, translate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="commonshelf",
        description="Run self-hosted apps from a signed Commonshelf catalogue.",
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("COMMONSHELF_HOME", DEFAULT_HOME)),
        help="installation state folder (default: %(default)s, or $COMMONSHELF_HOME)",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser(
        "init", parents=[common], help="subscribe to a catalogue and start the proxy"
    )
    init.add_argument("--repository", required=True, help="base URL of the published repository")
    init.add_argument(
        "--root",
        required=True,
        type=Path,
        help="the repository's trusted root metadata (1.root.json), obtained out of band",
    )
    init.add_argument("--domain", default="localhost", help="apps answer at APP.DOMAIN")
    init.add_argument("--http-port", type=int, default=80, help="host port of the proxy")
    init.add_argument("--namespace", default="", help="prefix for stack and network names")
    init.add_argument("--force", action="store_true", help="replace an existing configuration/root")

    sub.add_parser("apps", parents=[common], help="list the apps in the verified catalogue")

    install = sub.add_parser(
        "install", parents=[common], help="install an app (or move it to a version)"
    )
    install.add_argument("app")
    install.add_argument("--version", default=None, help="a published version (default: newest)")
    install.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting the app declares (repeatable; kept across updates)",
    )

    update = sub.add_parser(
        "update", parents=[common], help="upgrade installed apps to the newest published versions"
    )
    update.add_argument("apps", nargs="*", help="only these apps")

    sub.add_parser("status", parents=[common], help="installed apps, their versions and health")
    return parser


def _apps(agent: Agent, as_json: bool) -> None:
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


def _status(agent: Agent, as_json: bool) -> None:
    statuses = agent.status()
    if as_json:
        console.print_json([{**asdict(s), "healthy": s.healthy} for s in statuses])
        return
    table = Table("app", "version", "latest", "health", "url", title="Installed apps")
    for s in statuses:
        health = "[green]healthy[/green]" if s.healthy else "[red]unhealthy[/red]"
        table.add_row(s.app, s.version, s.latest or "?", health, s.url)
    console.out.print(table)


def _settings(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommonshelfError(f"--set {pair!r} is not KEY=VALUE.", "write e.g. --set TZ=UTC.")
        settings[key.strip()] = value
    return settings


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    agent = Agent(args.home)
    if args.command == "init":
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
            force=args.force,
        )
        if args.json:
            console.print_json(msgspec.to_builtins(config))
        else:
            console.out.print(
                f"Subscribed to {config.repository}; proxy on port {config.http_port}."
            )
    elif args.command == "apps":
        _apps(agent, args.json)
    elif args.command == "install":
        record, changed = agent.install(args.app, args.version, _settings(args.set))
        if args.json:
            console.print_json({**msgspec.to_builtins(record), "changed": changed})
        else:
            verb = "Installed" if changed else "Already running"
            console.out.print(f"{verb} {record.app} {record.version} at {record.url}")
    elif args.command == "update":
        changes = agent.update(args.apps or None)
        if args.json:
            console.print_json([{"app": a, "from": f, "to": t} for a, f, t in changes])
        elif not changes:
            console.out.print("Everything is up to date.")
        for app, old, new in changes:
            console.out.print(f"Updated {app}: {old} → {new}")
    elif args.command == "status":
        _status(agent, args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except KeyboardInterrupt:
        console.fail("interrupted; nothing half-written was kept.")
        return 130
    except Exception as exc:  # one line for anything a person can act on, never a traceback
        error = translate(exc)
        if error is None:
            raise
        console.fail(str(error))
        return 2


if __name__ == "__main__":
    sys.exit(main())
