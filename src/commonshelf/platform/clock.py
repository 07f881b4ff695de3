"""Timestamps as every record of the shelf writes them (UTC, second precision, ISO 8601)."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
