"""Compose syntax both sides read: the shelf lints recipes' compose files, and installations
render the pinned ones the catalogue serves."""

from __future__ import annotations

from typing import Any


def published_port(port: Any) -> tuple[int, str] | None:
    """(host port, protocol) of a compose `ports:` item, or None when it publishes none."""
    if isinstance(port, dict):
        try:
            return int(port["published"]), str(port.get("protocol", "tcp"))
        except (KeyError, TypeError, ValueError):
            return None
    text = str(port)
    body, _, protocol = text.partition("/")
    parts = body.split(":")
    try:
        return int(parts[-2] if len(parts) >= 2 else parts[0]), protocol or "tcp"
    except ValueError:
        return None
