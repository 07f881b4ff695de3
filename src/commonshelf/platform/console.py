"""Output shared by the CLI, tasks and sessions: rich for people, JSON for machines."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from rich.console import Console

from commonshelf.platform.errors import CommonshelfError

# Wide enough for digests and URLs when the output is a log rather than a terminal.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 140)


def say(message: str) -> None:
    """A progress line on stderr, so stdout stays clean for --json."""
    err.print(f"[dim]•[/dim] {message}")


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}")


def fail(message: str) -> None:
    """One line, no traceback: what is wrong and how to fix it."""
    err.print(f"[red]error:[/red] {message}", soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def stage_table(stages: list[Any], title: str = "Pipeline") -> None:
    """Stage results (recipe, stage, passed, skipped, summary, seconds) as a table."""
    from rich.table import Table

    table = Table("recipe", "stage", "result", "time", "summary", title=title)
    for s in stages:
        result = (
            "[green]skipped (unchanged)[/green]"
            if s.skipped
            else "[green]passed[/green]"
            if s.passed
            else "[red]FAILED[/red]"
        )
        table.add_row(
            s.recipe,
            s.stage,
            result,
            f"{s.seconds:.1f}s",
            s.summary.splitlines()[0] if s.summary else "",
        )
    out.print(table)
    for s in stages:
        if not s.passed and "\n" in s.summary:
            err.print(f"[red]{s.recipe} {s.stage} output:[/red]\n{s.summary}")


def matrix_table(recipe: str, gate: dict[str, Any]) -> None:
    """The standard matrix of a recipe's test gate (from its evidence record)."""
    from rich.table import Table

    level = f"{gate.get('level', 0)}/{gate.get('max_level', '?')}"
    minimum = gate.get("min_level")
    title = f"{recipe}: level {level}" + (f" (minimum {minimum})" if minimum is not None else "")
    table = Table("check", "result", "time", "detail", title=title)
    colours = {"passed": "green", "failed": "red", "skipped": "yellow"}
    checks = list(gate.get("matrix", []))
    if gate.get("lint"):
        checks.append(gate["lint"])
    for check in checks:
        colour = colours.get(check["status"], "white")
        table.add_row(
            check["check"],
            f"[{colour}]{check['status']}[/{colour}]",
            f"{check['seconds']:.1f}s",
            check["detail"].splitlines()[0] if check["detail"] else "",
        )
    out.print(table)


def scan_table(recipe: str, gate: dict[str, Any]) -> None:
    """A scan gate's blocking and waived findings, with the DB and policy it ran with."""
    from rich.table import Table

    table = Table("verdict", "id", "severity", "service", "what", "fix", title=f"{recipe} scan")
    for finding in gate.get("blocking", []):
        what = (
            f"{finding.get('package', '')} {finding.get('installed', '')}".strip()
            or finding.get("where", "")
        )
        table.add_row(
            "[red]blocks[/red]",
            finding["id"],
            finding["severity"],
            finding.get("service", ""),
            what,
            finding.get("fixed", "") or "—",
        )
    for waived in gate.get("waived", []):
        table.add_row(
            "[yellow]waived[/yellow]",
            waived["id"],
            "",
            "",
            waived.get("statement", "")[:60],
            f"until {waived['expires']}",
        )
    if table.row_count:
        out.print(table)
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(gate.get("counts", {}).items()) if n)
    out.print(
        f"{recipe}: {'passed' if gate.get('passed') else 'BLOCKED'} ({counts or 'no findings'}); "
        f"DB {gate.get('vuln_db', '')}; trivy {gate.get('trivy_version', '')}; "
        f"policy {gate.get('fail_on', '')}"
    )


def advisory_table(advisories: dict[str, list[dict[str, Any]]]) -> None:
    """Advisories per app: what is affected and where it is fixed."""
    from rich.table import Table

    table = Table("app", "id", "severity", "package", "affected", "fixed in", title="Advisories")
    for app, found in sorted(advisories.items()):
        for advisory in found:
            table.add_row(
                app,
                advisory["id"],
                advisory["severity"],
                advisory["package"],
                ", ".join(advisory["affected"]),
                advisory.get("fixed_in", "") or "not yet",
            )
    out.print(table)


def parse_day(text: str) -> dt.date:
    """A YYYY-MM-DD option value, or a one-line error saying so."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommonshelfError(f"'{text}' is not a date.", "write it as YYYY-MM-DD.") from None
