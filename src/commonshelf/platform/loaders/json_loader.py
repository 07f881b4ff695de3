"""Bounded JSON: a scan at C speed of values, depth and string lengths, then a strict parse.

The scan skips strings and measures bracket depth, value count and string length; the
parse refuses duplicate keys and NaN/Infinity. A slower scan names the line of the first
problem once something is wrong.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from pathlib import Path
from typing import Any

from commonshelf.platform.loaders.limits import Limits, Refused, as_error, brief, one_line, show
from commonshelf.platform.loaders.reading import decode, read_capped

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# everything but brackets and commas, strings included (an unclosed quote stays)
_JSON_FILLER = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\[\]{},"]+', re.DOTALL)
_JSON_STEP = {"[": 1, "{": 1, "]": -1, "}": -1, ",": 0, '"': 0}
_JSON_TOKEN = re.compile(
    r'("[^"\\]*(?:\\.[^"\\]*)*")(\s*:)?|[\[\]{}]|NaN|-?Infinity|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?',
    re.DOTALL,
)


def _json_shape(text: str, limits: Limits) -> tuple[int, int, int]:
    """(estimated values, bracket depth, longest string) without parsing, at C speed.

    Cheapest first: the depth and string scans run only when the value count is in
    bounds, so they walk at most a few `max_nodes` brackets."""
    skeleton = _JSON_FILLER.sub("", text)  # brackets and commas only
    values = skeleton.count(",") + skeleton.count("[") + skeleton.count("{") + 1
    if values > limits.max_nodes:
        return values, 0, 0
    depth = max(accumulate(map(_JSON_STEP.__getitem__, skeleton)), default=0)
    if len(text) <= limits.max_scalar:  # no string can be too long: skip that pass
        return values, depth, 0
    longest = max(map(len, map(re.Match.group, _JSON_STRING.finditer(text))), default=2) - 2
    return values, depth, longest


def _json_first_problem(text: str, limits: Limits) -> Refused | None:
    """The first too-deep bracket, too-long string, duplicate key or non-finite number,
    in document order, with its line (a slow scan, run only once something is wrong)."""
    stack: list[set[str] | None] = []

    def line(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    for match in _JSON_TOKEN.finditer(text):
        token, string = match.group(), match.group(1)
        if string is not None:
            if len(string) - 2 > limits.max_scalar:
                return Refused(
                    f"a string of {len(string) - 2} characters is longer than the "
                    f"{limits.max_scalar} {limits.a_kind} may hold",
                    f"shorten it; a real {limits.kind} holds no such string.",
                    line(match.start()),
                )
            top = stack[-1] if stack else None
            if match.group(2) and top is not None:
                try:
                    key = json.loads(string)
                except ValueError:
                    return None  # bad escape: json.loads reports it with its line
                if key in top:
                    return Refused(
                        f"key {show(key)} appears twice in one object",
                        "keep one of them; JSON readers disagree on which one wins.",
                        line(match.start()),
                    )
                top.add(key)
        elif token in ("[", "{"):
            stack.append(set() if token == "{" else None)
            if len(stack) > limits.max_depth:
                return Refused(
                    f"nests deeper than {limits.max_depth} levels",
                    f"flatten it; {limits.a_kind} needs only a few levels.",
                    line(match.start()),
                )
        elif token in ("]", "}"):
            if stack:
                stack.pop()
        elif (token[-1] in "yN" or "." in token or "e" in token.lower()) and not math.isfinite(
            float(token)
        ):  # NaN, Infinity or a float that overflows (integers stay integers)
            return Refused(
                f"{brief(token)} is not a finite JSON number",
                "write a finite number, or null.",
                line(match.start()),
            )
    return None


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise Refused(
                    f"key {show(key)} appears twice in one object",
                    "keep one of them; JSON readers disagree on which one wins.",
                )
            seen.add(key)
    return result


def _json_constant(token: str) -> Any:
    raise Refused(f"{token} is not a finite JSON number", "write a finite number, or null.")


def _json_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise Refused(
            f"{brief(token)} is not a finite JSON number", "write a finite number, or null."
        )
    return value


def _json_text(text: str, limits: Limits) -> Any:
    values, depth, longest = _json_shape(text, limits)
    if values > limits.max_nodes:
        raise Refused(
            f"holds about {values} values, over the {limits.max_nodes} {limits.a_kind} may have",
            f"split or trim it; a real {limits.kind} holds far fewer.",
        )
    if depth > limits.max_depth or longest > limits.max_scalar:
        # the exact scan names the line; when it finds nothing the estimate was thrown off
        # by broken syntax, which json.loads reports (and it cannot recurse far: RecursionError
        # is caught below)
        found = _json_first_problem(text, limits)
        if found is not None:
            raise found
    try:
        return json.loads(
            text,
            object_pairs_hook=_json_pairs,
            parse_constant=_json_constant,
            parse_float=_json_float,
        )
    except Refused as refused:
        located = _json_first_problem(text, limits)
        raise (located or refused) from None
    except json.JSONDecodeError as exc:
        raise Refused(
            f"invalid JSON ({exc.msg})", "fix the syntax at that line.", exc.lineno
        ) from None
    except RecursionError:
        raise Refused(
            f"nests deeper than {limits.max_depth} levels",
            f"flatten it; {limits.a_kind} needs only a few levels.",
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        reason = one_line(str(exc)).split(": ")[0]
        raise Refused(f"a value cannot be read ({reason})", "correct the value.") from None


def load_json_bytes(data: bytes, origin: str, limits: Limits) -> Any:
    """The JSON value in `data`, bounded by `limits`; `origin` names it in errors."""
    try:
        return _json_text(decode(data, limits), limits)
    except Refused as refused:
        raise as_error(refused, origin, limits, is_yaml=False) from None


def load_json(path: Path, limits: Limits) -> Any:
    """The JSON value in the file at `path`, bounded by `limits`."""
    try:
        data = read_capped(path, limits)
        text = decode(data, limits)
        del data  # the bytes are not needed once decoded: less to hold while parsing
        return _json_text(text, limits)
    except Refused as refused:
        raise as_error(refused, str(path), limits, is_yaml=False) from None
