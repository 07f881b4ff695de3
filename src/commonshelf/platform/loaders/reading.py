"""Bytes of an input: its size (from `stat` before reading) and strict UTF-8."""

from __future__ import annotations

import stat
from pathlib import Path

from commonshelf.platform.loaders.limits import Limits, Refused, size_text


def read_capped(path: Path, limits: Limits) -> bytes:
    """At most `max_bytes + 1` bytes of a regular file, refused from `stat` when larger."""
    try:
        info = path.stat()
    except FileNotFoundError:
        fix = f"create {path.name}" + (" (see docs/packaging.md)." if limits.recipe else ".")
        raise Refused("is missing", fix, tail=" is missing.") from None
    except OSError as exc:
        raise Refused(f"cannot be read ({exc.strerror})", "make it a readable file.") from None
    if not stat.S_ISREG(info.st_mode):
        raise Refused("is not a regular file", f"point to the {limits.kind} itself.")
    check_size(info.st_size, limits)
    try:
        with path.open("rb") as handle:
            return handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise Refused(f"cannot be read ({exc.strerror})", "make it a readable file.") from None


def check_size(size: int, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise Refused(
            f"is {size} bytes, over the {size_text(limits.max_bytes)} {limits.a_kind} may have",
            f"shrink it below {size_text(limits.max_bytes)}; a real {limits.kind} is far smaller.",
        )


def decode(data: bytes, limits: Limits) -> str:
    check_size(len(data), limits)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8",
            "save the file as UTF-8.",
            data.count(b"\n", 0, exc.start) + 1,
        ) from None
