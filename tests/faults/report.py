"""What each fault case records for `benchmarks/faults.md`: what was injected, how long the
installation took to recover, how many bytes of user data were lost (must be 0) and how many
requests the agent made. One JSON file per case under `build/faults/`, written atomically;
`benchmarks/faults.py` renders them as the table."""

from __future__ import annotations

from pathlib import Path

import msgspec

from commonshelf.platform.fsutil import write_bytes_atomic

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "build" / "faults"


class FaultCase(msgspec.Struct, frozen=True, kw_only=True):
    case: str  # e.g. "catalogue: answers 500"
    injected: str  # what the test did, in a sentence
    recovered_s: float  # from the fault's end until the app served and `run` converged
    data_lost_bytes: int  # seeded bytes missing or changed afterwards (must be 0)
    requests: int | None = None  # requests the agent made to the catalogue, when counted
    outcome: str = ""  # the agent's one sentence (`status`)


def record(result: FaultCase) -> None:
    """Keep one case's figures (the test asserts on them itself)."""
    name = "".join(c if c.isalnum() else "-" for c in result.case.lower()).strip("-")
    write_bytes_atomic(FOLDER / f"{name}.json", msgspec.json.encode(result))


def recorded() -> list[FaultCase]:
    return [
        msgspec.json.decode(path.read_bytes(), type=FaultCase)
        for path in sorted(FOLDER.glob("*.json"))
    ]
