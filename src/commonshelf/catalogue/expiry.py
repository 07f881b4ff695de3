"""How long each role's signed metadata stays valid, and when it is due to be re-signed.

Defaults: root 1 year, targets 3 months, snapshot 1 week, timestamp 1 day. A short
timestamp bounds how long a mirror can serve a frozen (old, still signed) repository; it
costs a scheduled `invoke refresh`, which re-signs any role with less than half its
lifetime left. Each lifetime can be set with COMMONSHELF_EXPIRY_<ROLE> (`36h`, `1d`, `2w`,
or a bare number of days).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from commonshelf.platform.errors import ReleaseError

_UNITS = {"h": 1 / 24, "d": 1.0, "w": 7.0}
_LONGEST_DAYS = 10 * 366  # a lifetime beyond ten years is a typo, not a policy


@dataclass(frozen=True)
class Expiry:
    """Lifetimes in days (fractions allowed: 0.5 is twelve hours)."""

    root: float = 365
    targets: float = 90
    snapshot: float = 7
    timestamp: float = 1

    def days(self, role: str) -> float:
        return float(getattr(self, role))

    def lifetime(self, role: str) -> timedelta:
        return timedelta(days=self.days(role))

    def due(self, role: str, expires: datetime, now: datetime) -> bool:
        """Whether `role`, valid until `expires`, has less than half its lifetime left."""
        return expires - now < self.lifetime(role) / 2

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Expiry:
        """The defaults, each replaced by COMMONSHELF_EXPIRY_<ROLE> when that is set."""
        env = os.environ if env is None else env
        given: dict[str, float] = {}
        for role in ("root", "targets", "snapshot", "timestamp"):
            raw = env.get(f"COMMONSHELF_EXPIRY_{role.upper()}", "").strip()
            if raw:
                given[role] = parse_lifetime(raw, f"COMMONSHELF_EXPIRY_{role.upper()}")
        return cls(**given)


def parse_lifetime(raw: str, name: str) -> float:
    """`36h`, `1d`, `2w` or a bare number of days, as days; a ReleaseError otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hdw]?)\s*", raw.lower())
    days = float(found.group(1)) * _UNITS[found.group(2) or "d"] if found else 0.0
    if not 1 / 24 <= days <= _LONGEST_DAYS:
        raise ReleaseError(
            f"{name}={raw!r} is not a lifetime from one hour to ten years.",
            f"write it in hours, days or weeks (36h, 1d, 2w), or unset {name} for the default.",
        )
    return days
