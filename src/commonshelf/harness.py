"""What a recipe's tests import, at a path that never moves.

Released recipe versions are rebuilt from the commits they were released from
(`ci.history`), with today's tooling, so the names their `tests/` import —
`commonshelf.harness.RunningStack`, `commonshelf.recipe.Recipe` — and the fixtures
of the `commonshelf` pytest plugin registered through this module stay put.
"""

from __future__ import annotations

from commonshelf.ci.containers import RunningService, RunningStack, start_stack
from commonshelf.ci.plugin import (
    app,
    pytest_sessionfinish,
    pytest_sessionstart,
    recipe,
    recipe_images,
)

__all__ = [
    "RunningService",
    "RunningStack",
    "app",
    "pytest_sessionfinish",
    "pytest_sessionstart",
    "recipe",
    "recipe_images",
    "start_stack",
]
