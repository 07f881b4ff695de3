"""compose.yml, read once: the parts of a service spec the shelf acts on.

The release pins images in it, the agent renders it for Swarm, the test harness
starts its services as plain containers and lint checks it; each reads a service
through these helpers so they agree on what a compose file means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from commonshelf.platform.errors import CommonshelfError, RecipeError
from commonshelf.platform.loaders import COMPOSE, load_yaml

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")
_UNIT_NS = {"h": 3600e9, "m": 60e9, "s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0}


def duration_ns(value: str | int | float) -> int:
    """Compose durations ('5s', '1m30s', '500ms') in nanoseconds, as the Engine API wants."""
    if isinstance(value, int | float):
        return int(value * 1e9)
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        raise CommonshelfError(f"'{value}' is not a duration.", "write durations like 5s or 1m30s.")
    return int(sum(float(n) * _UNIT_NS[u] for n, u in parts))


def engine_healthcheck(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A compose `healthcheck:` block as Engine API HealthConfig."""
    test = spec["test"]
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    result: dict[str, Any] = {"test": list(test)}
    for key, api in (
        ("interval", "interval"),
        ("timeout", "timeout"),
        ("start_period", "start_period"),
    ):
        if key in spec:
            result[api] = duration_ns(spec[key])
    if "retries" in spec:
        result["retries"] = int(spec["retries"])
    return result


def bind_mounts(spec: Any) -> list[tuple[str, str, str]]:
    """(host path, container path, mode) of a service's bind mounts (absolute host paths).

    Recipes may not bind host paths (lint R-rules), but the harness still runs what a
    compose file says, so the matrix can prove what such a recipe does.
    """
    mounts: list[tuple[str, str, str]] = []
    for item in spec if isinstance(spec, list) else []:
        if isinstance(item, str) and item.startswith("/"):
            source, _, rest = item.partition(":")
            target, _, mode = rest.partition(":")
            mounts.append((source, target, mode or "rw"))
        elif isinstance(item, dict) and item.get("type") == "bind":
            mode = "ro" if item.get("read_only") else "rw"
            mounts.append((str(item["source"]), str(item["target"]), mode))
    return mounts


def networks(service: Mapping[str, Any]) -> list[str]:
    """The compose networks a service joins ('default' when it names none), in order."""
    spec = service.get("networks")
    names = list(spec) if isinstance(spec, list | dict) else []
    return [str(n) for n in names] or ["default"]


def service_environment(spec: Any) -> dict[str, str]:
    if isinstance(spec, dict):
        return {str(k): "" if v is None else str(v) for k, v in spec.items()}
    if isinstance(spec, list):
        pairs = (str(item).partition("=") for item in spec)
        return {key: value for key, _, value in pairs}
    return {}


def service_secrets(spec: Any) -> list[tuple[str, str]]:
    """(secret, path in the container) pairs of a compose service's `secrets:` (short or long
    syntax); Swarm mounts each at /run/secrets/<target>."""
    pairs: list[tuple[str, str]] = []
    for item in spec if isinstance(spec, list) else []:
        if isinstance(item, str):
            pairs.append((item, f"/run/secrets/{item}"))
        elif isinstance(item, dict) and item.get("source"):
            source = str(item["source"])
            target = str(item.get("target") or source)
            pairs.append((source, target if target.startswith("/") else f"/run/secrets/{target}"))
    return pairs


def named_volumes(spec: Any) -> list[tuple[str, str]]:
    """(volume, path) pairs of a compose service's named-volume mounts (short or long syntax)."""
    mounts: list[tuple[str, str]] = []
    for item in spec if isinstance(spec, list) else []:
        if isinstance(item, str):
            source, _, rest = item.partition(":")
            target = rest.split(":", 1)[0]
            if target and source and not source.startswith(("/", ".", "~", "$")):
                mounts.append((source, target))
        elif (
            isinstance(item, dict)
            and item.get("type", "volume") == "volume"
            and item.get("source")
            and item.get("target")
        ):
            mounts.append((str(item["source"]), str(item["target"])))
    return mounts


def load_compose(path: Path) -> dict[str, Any]:
    compose = load_yaml(path, COMPOSE)
    if not isinstance(compose, dict) or not isinstance(compose.get("services"), dict):
        raise RecipeError(f"{path}: no 'services' mapping.", "declare the stack's services.")
    return compose
