"""A recipe's runtime contract: the one function the release job and the matrix share.

The release writes its result into `catalog.json`; the matrix builds the same
contract for a candidate that is not released yet (its images pushed to the
project's registry as candidates), so the checks run exactly what an installation
would be handed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from commonshelf.catalogue.contract import (
    BackupHooks,
    DataVolume,
    MainService,
    Migration,
    Resources,
    Runtime,
    SecretSpec,
    ServiceImage,
    Setting,
)
from commonshelf.recipes.model import Recipe


def compose_target(app: str, version: str) -> str:
    """Where a version's pinned compose file lives among the repository's targets."""
    return f"apps/{app}/{version}/compose.yml"


def runtime_for(recipe: Recipe, services: dict[str, ServiceImage]) -> Runtime:
    """The contract of `recipe` running `services` (images pinned by digest)."""
    manifest: dict[str, Any] = recipe.manifest
    return Runtime(
        compose=compose_target(recipe.name, recipe.version),
        services=dict(sorted(services.items())),
        main=MainService(
            service=recipe.main.service,
            port=recipe.main.port,
            health=recipe.main.health,
            timeout=recipe.main.timeout,
        ),
        data=msgspec.convert(manifest.get("data") or [], tuple[DataVolume, ...]),
        backup=msgspec.convert(manifest.get("backup"), BackupHooks | None),
        secrets=msgspec.convert(manifest.get("secrets") or {}, dict[str, SecretSpec]),
        settings=msgspec.convert(manifest.get("env") or {}, dict[str, Setting]),
        migration=msgspec.convert(manifest.get("migration") or {}, Migration),
        resources=msgspec.convert(manifest.get("resources") or {}, Resources),
        architectures=tuple(manifest.get("architectures") or ("amd64",)),
    )
