"""Levels: how far a recipe got through the standard matrix (YunoHost's idea).

The level is cumulative: the number of checks passed in a row from the first, plus
one when every check passed and the recipe is lint-clean (no lint errors). A recipe
that installs but loses data on restart is level 2; the top level, MAX_LEVEL, is
what CI requires by default before a release.
"""

from __future__ import annotations

from typing import Any

import msgspec

from commonshelf.catalogue.contract import UpgradeProof
from commonshelf.ci.evidence import CheckResult
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.settings import MAX_LEVEL

CHECKS = ("install", "smoke", "persistence", "upgrade", "backup_restore", "removal")
LINT = "lint"
NOT_APPLICABLE = "n/a"  # the upgrade check of a recipe's first release: counts as passed
if len(CHECKS) + 1 != MAX_LEVEL:  # every check passed, and no lint errors
    raise CommonshelfError(f"MAX_LEVEL {MAX_LEVEL} does not match {len(CHECKS)} checks + lint.")

__all__ = ["CHECKS", "LINT", "MAX_LEVEL", "NOT_APPLICABLE", "MatrixResult"]


class MatrixResult(msgspec.Struct, frozen=True, kw_only=True):
    recipe: str
    version: str
    checks: tuple[CheckResult, ...]
    lint: CheckResult | None = None  # None: not linted (counts as not clean)
    upgrade: UpgradeProof | None = None  # probes through the proxy during the upgrade check

    @property
    def level(self) -> int:
        """Checks passed in a row from the first (skipped ones end the run too), plus one
        for a lint-clean recipe that passed them all."""
        level = 0
        for result in self.checks:
            if result.status not in ("passed", NOT_APPLICABLE):
                return level
            level += 1
        return level + (1 if self.lint is not None and self.lint.status == "passed" else 0)

    @property
    def passed(self) -> bool:
        """Every check of the matrix passed (lint is judged by the level)."""
        return all(r.status in ("passed", NOT_APPLICABLE) for r in self.checks)

    def failures(self) -> list[str]:
        """'<check>: <why>' for each failed check, lint included."""
        every = [*self.checks, *([self.lint] if self.lint else [])]
        return [f"{c.check}: {c.detail}" for c in every if c.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "version": self.version,
            "level": self.level,
            "max_level": MAX_LEVEL,
            "passed": self.passed,
            "lint": msgspec.to_builtins(self.lint) if self.lint else None,
            "checks": msgspec.to_builtins(self.checks),
        }
