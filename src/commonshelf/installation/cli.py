"""`commonshelf`: the command an installation's owner runs, and the timer runs (`run`).

Every command prints for people by default and JSON with `--json`; every failure is one
line saying what is wrong and how to fix it (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import msgspec

from commonshelf.installation import choice, portability, recovery, sbom, updates, views
from commonshelf.installation import cli_info as show_app
from commonshelf.installation import cli_output as show
from commonshelf.installation.agent import DEFAULT_HOME, Agent
from commonshelf.installation.policy import AppPolicy, check_window, load_policy, save_policy
from commonshelf.platform import console
from commonshelf.platform.errors import CommonshelfError, translate
from commonshelf.platform.fsutil import write_bytes_atomic


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

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=text, description=text)

    init = command("init", "subscribe to a catalogue and start the proxy")
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
    init.add_argument(
        "--min-level", type=int, default=7, help="lowest vetting level to install (default 7)"
    )
    init.add_argument(
        "--channel",
        choices=["stable", "testing"],
        default="stable",
        help="follow promoted versions only (stable, the default) or every new one (testing)",
    )
    init.add_argument("--force", action="store_true", help="replace an existing configuration/root")
    init.add_argument(
        "--enable-timer",
        action="store_true",
        help="install the systemd timer that runs `commonshelf run` (or say how to run it)",
    )

    command("apps", "list the apps in the verified catalogue")
    info = command("info", "an app's versions, advisories, SBOMs, settings, policy and backups")
    info.add_argument("app")
    bom = command("sbom", "download a version's CycloneDX SBOM through the signed catalogue")
    bom.add_argument("app")
    bom.add_argument("--version", default=None, help="default: the version running here")
    bom.add_argument("--service", default=None, help="default: the app's main service")
    bom.add_argument("--out", type=Path, default=None, help="write it here (default: stdout)")

    install = command("install", "install an app (or move it to a version)")
    install.add_argument("app")
    install.add_argument("--version", default=None, help="a published version (default: newest)")
    install.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting the app declares (repeatable; kept across updates)",
    )

    update = command("update", "apply the updates policy allows (majors wait for --to)")
    update.add_argument("apps", nargs="*", help="only these apps")
    update.add_argument("--check", action="store_true", help="only say what is available")
    update.add_argument("--dry-run", action="store_true", help="say what would be done")
    update.add_argument("--to", default=None, help="move one app to this version")

    rollback = command("rollback", "back to the version (and data) before the last update")
    rollback.add_argument("app")
    command("status", "installed apps, their health and what happened last")
    logs = command("logs", "the app's recent log lines")
    logs.add_argument("app")
    logs.add_argument("--lines", type=int, default=50, help="per service (default 50)")
    backup = command("backup", "back up an app now (hooks + volumes, checksummed)")
    backup.add_argument("app")
    backups = command("backups", "list an app's backups")
    backups.add_argument("app")
    restore = command("restore", "bring an app back to a backup (default: the newest)")
    restore.add_argument("app")
    restore.add_argument("backup", nargs="?", default=None)
    export = command("export", "write every app's data, settings, secrets and trust to FILE")
    export.add_argument("file", type=Path)
    imported = command("import", "bring an exported installation back on this machine")
    imported.add_argument("file", type=Path)
    imported.add_argument("--http-port", type=int, default=None, help="override the proxy port")
    imported.add_argument("--namespace", default=None, help="override the stack prefix")
    imported.add_argument("--domain", default=None, help="override the domain")
    remove = command("remove", "remove an app (its data goes to a last backup first)")
    remove.add_argument("app")
    remove.add_argument("--keep-data", action="store_true", help="keep the data volumes")
    policy = command("policy", "show or set an app's update policy")
    policy.add_argument("app")
    policy.add_argument("--auto", choices=["patch", "minor", "none"], default=None)
    policy.add_argument("--window", default=None, metavar="HH:MM-HH:MM", help="UTC; '' = any")
    command("run", "one unattended pass: poll the catalogue, apply what policy allows")
    return parser


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
    as_json: bool = args.json
    match args.command:
        case "init":
            show.init(agent, args)
        case "apps":
            show.apps(agent, as_json)
        case "info":
            show_app.info(views.info(agent, args.app), as_json, agent)
        case "sbom":
            wanted, data = sbom.fetch(agent, args.app, args.version, args.service)
            if args.out is None:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            else:
                write_bytes_atomic(args.out, data)
                show_app.sbom_written(wanted, str(args.out), as_json)
        case "install":
            record, changed = agent.install(args.app, args.version, _settings(args.set))
            if as_json:
                console.print_json({**msgspec.to_builtins(record), "changed": changed})
            else:
                verb = "Installed" if changed else "Already running"
                console.out.print(f"{verb} {record.app} {record.version} at {record.url}")
        case "update":
            if args.check or args.dry_run:
                show.plan(choice.plan(agent, args.apps or None, automatic=False), as_json)
            else:
                events = updates.update(agent, args.apps or None, to=args.to)
                show.events(events, as_json, "Everything is up to date.")
                return 1 if any(e.needs_attention for e in events) else 0
        case "rollback":
            show.events([recovery.rollback(agent, args.app)], as_json, "")
        case "status":
            show.status(agent, as_json)
        case "logs":
            lines = views.logs(agent, args.app, args.lines)
            if as_json:
                console.print_json(lines)
            else:
                print("\n".join(lines))
        case "backup":
            with agent.holding("backup"):
                backup_id = recovery.take(agent, args.app, "operator")
            show.backup_made(args.app, backup_id, as_json)
        case "backups":
            found = recovery.list_backups(agent.home, args.app)
            if not found and args.app not in agent.installed():
                agent.catalog().version(args.app)  # an unknown app is one clear line
            show.backups(args.app, found, as_json)
        case "restore":
            show.events([recovery.restore(agent, args.app, args.backup)], as_json, "")
        case "export":
            show.exported(portability.export_installation(agent, args.file), as_json)
        case "import":
            events = portability.import_installation(
                agent,
                args.file,
                http_port=args.http_port,
                namespace=args.namespace,
                domain=args.domain,
            )
            show.events(events, as_json, "Imported an installation without apps.")
        case "remove":
            show.events([recovery.remove(agent, args.app, args.keep_data)], as_json, "")
        case "policy":
            with agent.holding("policy"):
                agent.record(args.app)
                current = load_policy(agent.home, args.app)
                chosen: AppPolicy = msgspec.structs.replace(
                    current,
                    auto=args.auto or current.auto,
                    window=current.window if args.window is None else check_window(args.window),
                )
                if chosen != current:
                    save_policy(agent.home, args.app, chosen)
            show.policy(args.app, chosen, as_json)
        case "run":
            return show.unattended(agent, as_json)
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
