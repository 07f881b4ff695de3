"""The installation's history: every change the agent made or refused, with its outcome.

`HOME/history.jsonl` holds one JSON object per line, oldest first. Each event carries the
one sentence `status` shows for its app, so an operator reading `status` (or the journal of
the timer's runs) learns what happened without reading logs. The file is rewritten whole
through a temporary file (atomic) and keeps the newest KEPT events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

from commonshelf.platform.clock import now_iso
from commonshelf.platform.fsutil import write_bytes_atomic

HISTORY = "history.jsonl"
KEPT = 5000

Outcome = Literal["done", "failed", "rolled-back", "held", "refused"]


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    at: str = msgspec.field(default_factory=now_iso)  # when it happened (UTC)
    app: str  # "" for the installation itself (init, import, a refused catalogue)
    action: str  # install, update, rollback, backup, restore, remove, import, export, poll…
    outcome: Outcome
    sentence: str  # one sentence a person understands
    from_version: str = ""
    to_version: str = ""
    backup: str = ""  # the backup this change made or used

    @property
    def needs_attention(self) -> bool:
        """An update that did not happen as planned (the app may still serve)."""
        return self.outcome in ("failed", "rolled-back", "refused")


def events(home: Path, app: str | None = None) -> list[Event]:
    """Every event (of `app`), oldest first; a line cut short by a crash is skipped."""
    try:
        raw = (home / HISTORY).read_bytes()
    except FileNotFoundError:
        return []
    found = []
    decoder = msgspec.json.Decoder(Event)
    for line in raw.splitlines():
        try:
            event = decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if app is None or event.app == app:
            found.append(event)
    return found


def last(home: Path, app: str) -> Event | None:
    found = events(home, app)
    return found[-1] if found else None


def record(home: Path, event: Event) -> Event:
    kept = [*events(home), event][-KEPT:]
    encoder = msgspec.json.Encoder()
    body = b"".join(encoder.encode(e) + b"\n" for e in kept)
    write_bytes_atomic(home / HISTORY, body)
    return event
