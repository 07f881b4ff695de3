"""Levels: cumulative over the matrix, the top one only for a lint-clean recipe; the minimum
a release needs comes from COMMONSHELF_MIN_LEVEL."""

from __future__ import annotations

import pytest

from commonshelf.ci.matrix import CHECKS, LINT, MAX_LEVEL, CheckResult, MatrixResult
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.settings import Settings


def _result(statuses: list[str], lint: str | None = "passed") -> MatrixResult:
    checks = tuple(
        CheckResult(name, status, 0.1) for name, status in zip(CHECKS, statuses, strict=True)
    )
    return MatrixResult("app", "1.0.0+1", checks, CheckResult(LINT, lint, 0.1) if lint else None)


ALL = ["passed", "passed", "passed", "n/a", "passed", "passed"]


def test_every_check_and_clean_lint_is_the_top_level() -> None:
    assert _result(ALL).level == MAX_LEVEL == len(CHECKS) + 1


def test_lint_errors_cost_only_the_top_level() -> None:
    assert _result(ALL, lint="failed").level == len(CHECKS)
    assert _result(ALL, lint=None).level == len(CHECKS)


@pytest.mark.parametrize("failed_at", range(len(CHECKS)))
def test_the_level_counts_checks_passed_in_a_row(failed_at: int) -> None:
    statuses = [*ALL[:failed_at], "failed", *["skipped"] * (len(CHECKS) - failed_at - 1)]
    result = _result(statuses)
    assert result.level == failed_at
    assert not result.passed
    assert result.failures() == [f"{CHECKS[failed_at]}: "]


def test_lint_failure_is_reported_with_the_checks() -> None:
    result = _result(ALL, lint="failed")
    assert result.passed  # the matrix itself passed
    assert result.failures() == ["lint: "]
    assert result.to_dict()["lint"]["status"] == "failed"


def test_the_default_minimum_is_the_top_level() -> None:
    assert Settings.load(env={}).min_level == MAX_LEVEL
    assert Settings.load(env={"COMMONSHELF_MIN_LEVEL": "4"}).min_level == 4


@pytest.mark.parametrize("text", ["high", "-1", str(MAX_LEVEL + 1), "4.5"])
def test_a_bad_minimum_level_says_what_is_allowed(text: str) -> None:
    with pytest.raises(CommonshelfError, match=f"from 0 to {MAX_LEVEL}"):
        Settings.load(env={"COMMONSHELF_MIN_LEVEL": text})
