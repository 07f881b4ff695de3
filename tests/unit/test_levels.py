"""Levels: cumulative over the matrix, the top one only for a lint-clean recipe; the minimum
a release needs comes from COMMONSHELF_MIN_LEVEL."""

from __future__ import annotations

from typing import Literal

import pytest

from commonshelf.catalogue.contract import UpgradeProof
from commonshelf.ci.evidence import CheckResult
from commonshelf.ci.levels import CHECKS, LINT, MAX_LEVEL, NOT_APPLICABLE, MatrixResult
from commonshelf.platform import settings as platform_settings
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.settings import Settings

Status = Literal["passed", "failed", "skipped", "n/a"]
ALL: list[Status] = ["passed", "passed", "passed", "n/a", "passed", "passed"]


def _result(statuses: list[Status], lint: Status | None = "passed") -> MatrixResult:
    checks = tuple(
        CheckResult(check=name, status=status, seconds=0.1)
        for name, status in zip(CHECKS, statuses, strict=True)
    )
    return MatrixResult(
        recipe="app",
        version="1.0.0+1",
        checks=checks,
        lint=CheckResult(check=LINT, status=lint, seconds=0.1) if lint else None,
    )


def test_every_check_and_clean_lint_is_the_top_level() -> None:
    assert _result(ALL).level == MAX_LEVEL == len(CHECKS) + 1


def test_settings_and_levels_agree_on_the_top_level() -> None:
    # Settings keeps its own copy so that platform need not import ci
    assert platform_settings.MAX_LEVEL == MAX_LEVEL
    assert NOT_APPLICABLE == "n/a" and "upgrade" in CHECKS


def test_lint_errors_cost_only_the_top_level() -> None:
    assert _result(ALL, lint="failed").level == len(CHECKS)
    assert _result(ALL, lint=None).level == len(CHECKS)


@pytest.mark.parametrize("failed_at", range(len(CHECKS)))
def test_the_level_counts_checks_passed_in_a_row(failed_at: int) -> None:
    skipped: list[Status] = ["skipped"] * (len(CHECKS) - failed_at - 1)
    statuses: list[Status] = [*ALL[:failed_at], "failed", *skipped]
    result = _result(statuses)
    assert result.level == failed_at
    assert not result.passed
    assert result.failures() == [f"{CHECKS[failed_at]}: "]


def test_a_skipped_check_ends_the_run_without_failing() -> None:
    result = _result(["passed", "skipped", "passed", "passed", "passed", "passed"])
    assert result.level == 1 and not result.passed and result.failures() == []


def test_failures_carry_their_detail() -> None:
    checks = tuple(
        CheckResult(
            check=name,
            status="failed" if name == "persistence" else "passed",
            seconds=1.0,
            detail="data lost on restart" if name == "persistence" else "",
        )
        for name in CHECKS
    )
    result = MatrixResult(recipe="app", version="1.0.0+1", checks=checks)
    assert result.failures() == ["persistence: data lost on restart"]
    assert result.level == CHECKS.index("persistence")


def test_lint_failure_is_reported_with_the_checks() -> None:
    result = _result(ALL, lint="failed")
    assert result.passed  # the matrix itself passed
    assert result.failures() == ["lint: "]
    assert result.to_dict()["lint"]["status"] == "failed"


def test_to_dict_is_plain_data() -> None:
    proof = UpgradeProof(from_version="0.9.0+1", probes=40, failed=0, seconds=12.5)
    result = MatrixResult(
        recipe="app",
        version="1.0.0+1",
        checks=_result(ALL).checks,
        lint=CheckResult(check=LINT, status="passed", seconds=0.1),
        upgrade=proof,
    )
    data = result.to_dict()
    assert data["level"] == data["max_level"] == MAX_LEVEL and data["passed"] is True
    assert [c["check"] for c in data["checks"]] == list(CHECKS)
    assert data["checks"][0] == {
        "check": "install",
        "status": "passed",
        "seconds": 0.1,
        "detail": "",
    }
    assert _result(ALL, lint=None).to_dict()["lint"] is None


def test_the_default_minimum_is_the_top_level() -> None:
    assert Settings.load(env={}).min_level == MAX_LEVEL
    assert Settings.load(env={"COMMONSHELF_MIN_LEVEL": "4"}).min_level == 4


@pytest.mark.parametrize("text", ["high", "-1", str(MAX_LEVEL + 1), "4.5"])
def test_a_bad_minimum_level_says_what_is_allowed(text: str) -> None:
    with pytest.raises(CommonshelfError, match=f"from 0 to {MAX_LEVEL}"):
        Settings.load(env={"COMMONSHELF_MIN_LEVEL": text})
