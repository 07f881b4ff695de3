"""The progress callback every long-running step takes: one line of what it does now.

Entry points pass `console.say` (a line on stderr); library code defaults to `quiet`.
"""

from __future__ import annotations

from collections.abc import Callable

Say = Callable[[str], None]


def quiet(_: str) -> None:
    """A `Say` that says nothing."""
