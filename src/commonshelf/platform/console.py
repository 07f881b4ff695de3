"""Output shared by the CLI, tasks and sessions: rich for people, JSON for machines."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

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
