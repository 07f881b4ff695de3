"""RELEASES.md: the human log of catalogue releases, newest first."""

from __future__ import annotations

from commonshelf.catalogue.catalog import Catalog
from commonshelf.platform.fsutil import write_text_atomic
from commonshelf.platform.settings import Settings

RELEASES_HEADER = (
    "# Releases\n\nEach entry is one publication of the signed catalogue, newest first.\n"
)


def release_notes(catalog: Catalog, notes: list[str], targets_version: int) -> str:
    lines = [f"## {catalog.generated} — catalogue version {targets_version}", ""]
    lines.extend(notes)
    return "\n".join(lines) + "\n"


def append_releases(settings: Settings, entry: str) -> None:
    try:
        text = settings.releases_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = RELEASES_HEADER
    if not text.startswith(RELEASES_HEADER):
        text = RELEASES_HEADER + "\n" + text
    body = text[len(RELEASES_HEADER) :].lstrip("\n")
    write_text_atomic(settings.releases_path, f"{RELEASES_HEADER}\n{entry}\n{body}".rstrip() + "\n")
