"""The rules table of docs/packaging.md, generated from the registry (`./shelf docs`)."""

from __future__ import annotations

import difflib
from pathlib import Path

from commonshelf.recipes.lint.engine import RULES

BEGIN = "<!-- rules:begin -->"
END = "<!-- rules:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def rules_markdown() -> str:
    """The Markdown table of every rule: id, severity, what it checks, how to fix it."""
    lines = ["| rule | severity | what it checks | how to fix |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {rule.id} | {rule.severity} | {_cell(rule.title)} | {_cell(rule.fix)} |"
        for rule in RULES.values()
    ]
    return "\n".join(lines) + "\n"


def rules_block(text: str) -> str:
    """What stands between the markers in `text` (ValueError when they are missing)."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} … {END} pair")
    return text[start + len(BEGIN) : end].strip("\n") + "\n"


def update_rules_doc(path: Path) -> list[str]:
    """Rewrite the rules table between the markers in `path`; the unified diff ([] if none)."""
    text = path.read_text(encoding="utf-8")
    old = rules_block(text)
    new = rules_markdown()
    if old == new:
        return []
    start, end = text.find(BEGIN) + len(BEGIN), text.find(END)
    path.write_text(text[:start] + "\n" + new + text[end:], encoding="utf-8")
    return list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), f"{path.name} (before)", path.name, lineterm=""
        )
    )
