"""Reading untrusted YAML and JSON: one bounded loader per kind of input.

Recipes come from pull requests, catalogues and compose files from mirrors, state
from disk a crash may have cut short. Every reader goes through here so each kind
of input has one place that bounds it and one wording for its errors.

Each kind has its `Limits` (bytes, nesting depth, values after alias expansion,
characters of one value). The checks run cheapest first, so a hostile file is
refused before it costs time or memory:

1. size, from `stat` before reading (and at most `max_bytes + 1` bytes are read);
2. strict UTF-8 (the error names the line of the first bad byte);
3. YAML: one streaming pass over libyaml's parser events that tracks depth, counts
   values with every alias at the full size of its anchor, caps scalars, refuses
   explicit tags beyond the safe core and more than one document; JSON: a scan that
   skips strings and measures bracket depth, value count and string length;
4. only then the real parse, which refuses duplicate keys (and NaN/Infinity in JSON).

Every refusal is an `InputError`: one line naming the file, the 1-based line when
known, what is wrong, and a fix. Two subclasses keep existing callers working:

- `YAMLInputError` (every YAML refusal) is also a `yaml.YAMLError` with `problem` and
  `problem_mark`, so code written against PyYAML's errors (the linter) still catches
  and places it;
- `RecipeInputError` (kinds with `Limits.recipe`: recipe.yml, compose.yml,
  .trivyignore.yaml) is also a `RecipeError`, so `load_recipe` still fails with a
  RecipeError, worded as before for a missing file ("X is missing.") and bad syntax
  ("X:N: invalid YAML (...)").
"""

from __future__ import annotations

import json
import math
import re
import stat
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from commonshelf.platform.errors import CommonshelfError, RecipeError

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Limits:
    """How much of one kind of input the shelf reads before refusing it.

    `max_nodes` counts values (scalars and collections) after YAML alias expansion;
    for JSON it is estimated from commas and brackets. `max_scalar` is in characters.
    `recipe` marks the files of a recipe folder: their refusals are `RecipeError`s.
    """

    kind: str
    max_bytes: int
    max_depth: int
    max_nodes: int
    max_scalar: int
    recipe: bool = False

    @property
    def a_kind(self) -> str:
        """The kind with its article, for messages ('a recipe.yml', 'an evidence record')."""
        return ("an " if self.kind[0] in "aeiou" else "a ") + self.kind


# Each limit is one to three orders of magnitude above what a real file needs, and low
# enough that reading a file at the limit stays well under a second and 100 MB.
#
# recipe.yml: real ones are 1-2 KiB, 4 levels deep, ~60 values; the longest field
# (description) is capped at 300 characters by the schema.
RECIPE = Limits("recipe.yml", 64 * KiB, 16, 20_000, 16 * KiB, recipe=True)
# compose.yml: real ones are 1-5 KiB and ~6 levels deep; a stack of many services with
# inline configs (`configs: content:`) or long commands still fits in 256 KiB.
COMPOSE = Limits("compose.yml", 256 * KiB, 24, 50_000, 64 * KiB, recipe=True)
# .trivyignore.yaml: a list of waivers (id, statement, expired_at), 3 levels deep.
WAIVERS = Limits(".trivyignore.yaml", 64 * KiB, 8, 10_000, 4 * KiB, recipe=True)
# catalog.json: ~5 KiB and ~100 values per released version, 7 levels deep. 16 MiB and
# 150 000 values hold about 1500 versions; the value cap keeps a file at both limits
# under 100 MB and 1 s to parse (benchmarks/hostile.md).
CATALOGUE = Limits("catalog.json", 16 * MiB, 16, 150_000, 64 * KiB)
# Evidence records: under 1 KiB and 5 levels deep today, but they embed SBOMs and scanner
# findings (`sboms`, `findings`): deeper (CycloneDX nests components) and with long texts
# (licences, advisories).
EVIDENCE = Limits("evidence record", 4 * MiB, 32, 400_000, 1 * MiB)
# Agent state (config.json, apps/<app>.json, subscription.json): flat records < 4 KiB.
STATE = Limits("agent state file", 1 * MiB, 8, 20_000, 64 * KiB)


class InputError(CommonshelfError):
    """An input file was refused: one line with the file, the line when known, and a fix.

    `origin` is the file (or a label for bytes from elsewhere), `line` 1-based or None,
    `problem` the bare description (without file and line) for callers that place it
    themselves, as the linter does.
    """

    def __init__(
        self, origin: str, problem: str, fix: str, line: int | None = None, *, what: str = ""
    ) -> None:
        where = f"{origin}:{line}" if line is not None else origin
        super().__init__(_one_line(what or f"{where}: {problem}."), _one_line(fix))
        self.origin = origin
        self.line = line
        self.problem = problem


class YAMLInputError(InputError, yaml.YAMLError):
    """A refused YAML file. Also a `yaml.YAMLError` with `problem` and `problem_mark`, so
    code that handles PyYAML's errors (the linter) handles these unchanged."""

    @property
    def problem_mark(self) -> yaml.Mark | None:
        if self.line is None:
            return None
        return yaml.Mark(self.origin, 0, self.line - 1, 0, "", 0)


class RecipeInputError(YAMLInputError, RecipeError):
    """A refused file of a recipe folder (`Limits.recipe`).

    It is a `RecipeError` as well, so everything that reports a broken recipe (CLI, CI,
    `load_recipe`'s callers and tests) reports these too, with the same one-line text.
    """


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _show(value: object, width: int = 40) -> str:
    """A value quoted for a message (repr, shortened)."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _brief(text: str, width: int = 40) -> str:
    """Text from the input for a message: one line, shortened."""
    return _one_line(text if len(text) <= width else text[: width - 3] + "...")


def _size(count: int) -> str:
    if count >= MiB and count % MiB == 0:
        return f"{count // MiB} MiB"
    if count >= KiB and count % KiB == 0:
        return f"{count // KiB} KiB"
    return f"{count} bytes"


class _Refused(Exception):
    """A refusal found below the public functions, before the origin is attached."""

    def __init__(self, problem: str, fix: str, line: int | None = None, *, tail: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.line = line
        self.tail = tail  # what follows "file:line" when ": {problem}." does not fit


def _error(refused: _Refused, origin: str, limits: Limits, *, is_yaml: bool) -> InputError:
    cls = RecipeInputError if limits.recipe else YAMLInputError if is_yaml else InputError
    where = f"{origin}:{refused.line}" if refused.line is not None else origin
    what = where + refused.tail if refused.tail else ""
    return cls(origin, refused.problem, refused.fix, refused.line, what=what)


# ---- bytes: size and encoding


def _read(path: Path, limits: Limits) -> bytes:
    """At most `max_bytes + 1` bytes of a regular file, refused from `stat` when larger."""
    try:
        info = path.stat()
    except FileNotFoundError:
        fix = f"create {path.name}" + (" (see docs/packaging.md)." if limits.recipe else ".")
        raise _Refused("is missing", fix, tail=" is missing.") from None
    except OSError as exc:
        raise _Refused(f"cannot be read ({exc.strerror})", "make it a readable file.") from None
    if not stat.S_ISREG(info.st_mode):
        raise _Refused("is not a regular file", f"point to the {limits.kind} itself.")
    _check_size(info.st_size, limits)
    try:
        with path.open("rb") as handle:
            return handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise _Refused(f"cannot be read ({exc.strerror})", "make it a readable file.") from None


def _check_size(size: int, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise _Refused(
            f"is {size} bytes, over the {_size(limits.max_bytes)} {limits.a_kind} may have",
            f"shrink it below {_size(limits.max_bytes)}; a real {limits.kind} is far smaller.",
        )


def _decode(data: bytes, limits: Limits) -> str:
    _check_size(len(data), limits)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused(
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8",
            "save the file as UTF-8.",
            data.count(b"\n", 0, exc.start) + 1,
        ) from None


# ---- YAML

if TYPE_CHECKING:
    _Base = yaml.SafeLoader
else:
    _Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it
Loader = _Base

_CORE = "tag:yaml.org,2002:"
SAFE_TAGS = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
_MERGE = _CORE + "merge"


def _line(event: Any) -> int:
    """The 1-based line where a parser event or node starts."""
    return int(event.start_mark.line) + 1


def _check_tag(event: Any, limits: Limits) -> None:
    tag = event.tag
    if tag is None or tag in SAFE_TAGS:
        return
    shown = "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag
    raise _Refused(
        f"tag '{_brief(shown)}' is not allowed",
        f"remove the tag; {limits.a_kind} holds plain strings, numbers, booleans, null, "
        "lists and mappings.",
        _line(event),
    )


def _scan_events(loader: Any, limits: Limits) -> None:
    """One streaming pass over the parser's events; raises _Refused at the first excess.

    Each open collection is a frame [anchor, values, height]; a closed one adds its
    values to its parent and, when anchored, records (values, height) so each alias
    counts as the full expansion of its anchor.
    """
    anchors: dict[str, tuple[int, int]] = {}
    stack: list[list[Any]] = []
    open_anchors: set[str] = set()
    total = 0
    documents = 0
    while True:
        event: Any = loader.get_event()
        kind = type(event)
        if kind is yaml.ScalarEvent:
            if len(event.value) > limits.max_scalar:
                raise _Refused(
                    f"a value of {len(event.value)} characters is longer than the "
                    f"{limits.max_scalar} {limits.a_kind} may hold",
                    "shorten it, or move the content to a file of its own.",
                    _line(event),
                )
            if event.tag is not None:
                _check_tag(event, limits)
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
            size, height = 1, 0
        elif kind is yaml.AliasEvent:
            name = event.anchor or ""
            if name in open_anchors:
                raise _Refused(
                    f"alias '*{_brief(name)}' sits inside its own anchor (a recursive structure)",
                    "write the values out instead of referring back to an enclosing anchor.",
                    _line(event),
                )
            size, height = anchors.get(name, (1, 0))  # unknown: the composer reports it
            if total + size > limits.max_nodes:
                raise _Refused(
                    f"alias '*{_brief(name)}' expands past {limits.max_nodes} nodes "
                    "(a YAML 'billion laughs')",
                    "write the values out instead of nesting aliases.",
                    _line(event),
                )
            if len(stack) + height > limits.max_depth:
                raise _Refused(
                    f"alias '*{_brief(name)}' nests deeper than {limits.max_depth} levels",
                    f"flatten it; {limits.a_kind} needs only a few levels.",
                    _line(event),
                )
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if event.tag is not None:
                _check_tag(event, limits)
            if len(stack) >= limits.max_depth:
                raise _Refused(
                    f"nests deeper than {limits.max_depth} levels",
                    f"flatten it; {limits.a_kind} needs only a few levels.",
                    _line(event),
                )
            if event.anchor is not None:
                open_anchors.add(event.anchor)
            stack.append([event.anchor, 1, 1])
            total += 1
            if total > limits.max_nodes:
                raise _too_many(limits, event)
            continue
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            anchor, size, height = stack.pop()
            if anchor is not None:
                anchors[anchor] = (size, height)
                open_anchors.discard(anchor)
            if stack:
                parent = stack[-1]
                parent[1] += size
                parent[2] = max(parent[2], height + 1)
            continue
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _Refused(
                    "holds more than one YAML document ('---')",
                    "keep a single document: remove the second '---' and what follows it.",
                    _line(event),
                )
            continue
        elif kind is yaml.StreamEndEvent or event is None:
            return
        else:
            continue
        # a scalar or an alias: `size` values of `height` levels into the open collection
        if stack:
            parent = stack[-1]
            parent[1] += size
            parent[2] = max(parent[2], height + 1)
        if kind is yaml.ScalarEvent:
            total += 1
            if total > limits.max_nodes:
                raise _too_many(limits, event)
        else:
            total += size


def _too_many(limits: Limits, event: Any) -> _Refused:
    return _Refused(
        f"holds more than {limits.max_nodes} values",
        f"split or trim it; a real {limits.kind} holds far fewer.",
        _line(event),
    )


class _Constructor(_Base):
    """The safe constructor, refusing duplicate mapping keys and naming bad values' lines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:  # `<<: *base` may be overridden; that is its point
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base constructor refuses it
                    continue
                if first is not None:
                    raise _Refused(
                        f"key {_show(key)} appears twice (first on line {first})",
                        "keep one of them; YAML would silently keep only the last.",
                        _line(key_node),
                    )
                seen[key] = _line(key_node)
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            raise _Refused(
                f"{_show(node.value)} cannot be read ({_one_line(str(exc))})",
                "correct the value.",
                _line(node),
            ) from None


def _compose(text: str, limits: Limits) -> tuple[Any, yaml.Node | None]:
    """Scan the events, then compose and construct: (data, root node)."""
    scanner = _Base(text)
    try:
        _scan_events(scanner, limits)
    finally:
        scanner.dispose()
    loader = _Constructor(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return data, root


def _yaml_text(
    text: str, origin: str, limits: Limits, *, sized: bool
) -> tuple[Any, yaml.Node | None]:
    """(data, root node) of `text`; `sized` when its byte size was checked already."""
    try:
        if not sized:
            _check_size(len(text), limits)  # a character is at least one byte
            _check_size(len(text.encode("utf-8", "surrogatepass")), limits)
        return _compose(text, limits)
    except _Refused as refused:
        raise _error(refused, origin, limits, is_yaml=True) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if problem == "exceeded maximum nesting depth":  # libyaml's own cap (flow lookahead)
            deep = _Refused(
                f"nests deeper than {limits.max_depth} levels",
                f"flatten it; {limits.a_kind} needs only a few levels.",
                mark.line + 1 if mark is not None else None,
            )
            raise _error(deep, origin, limits, is_yaml=True) from None
        syntax = _Refused(  # `problem` bare: the linter prefixes "invalid YAML: "
            _one_line(problem),
            "fix the syntax at that line.",
            mark.line + 1 if mark is not None else None,
            tail=f": invalid YAML ({_one_line(problem)}).",
        )
        raise _error(syntax, origin, limits, is_yaml=True) from None
    except (ValueError, OverflowError, RecursionError) as exc:
        value = _Refused(f"a value cannot be read ({_one_line(str(exc))})", "correct the value.")
        raise _error(value, origin, limits, is_yaml=True) from None


def load_yaml_bytes(data: bytes, origin: str, limits: Limits) -> Any:
    """The one YAML document in `data`, bounded by `limits`; `origin` names it in errors."""
    try:
        text = _decode(data, limits)
    except _Refused as refused:
        raise _error(refused, origin, limits, is_yaml=True) from None
    return _yaml_text(text, origin, limits, sized=True)[0]


def load_yaml(path: Path, limits: Limits) -> Any:
    """The one YAML document in the file at `path`, bounded by `limits`."""
    try:
        data = _read(path, limits)
    except _Refused as refused:
        raise _error(refused, str(path), limits, is_yaml=True) from None
    return load_yaml_bytes(data, str(path), limits)


def read_yaml(path: Path, limits: Limits = RECIPE) -> Any:
    """`load_yaml` with recipe limits by default (the signature older callers use)."""
    return load_yaml(path, limits)


def load_with_lines(
    text: str, origin: str = "<yaml>", limits: Limits = COMPOSE
) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """Parse YAML once: the data, and the 1-based line of every key and item by path.

    The same bounded path as `load_yaml`. The default limits are COMPOSE's, the widest
    of the files the linter reads (recipe.yml, compose.yml, .trivyignore.yaml); a
    refusal is a `RecipeInputError`, which is also a `yaml.YAMLError`.
    """
    data, root = _yaml_text(text, origin, limits, sized=False)
    return data, _lines(root)


def load_yaml_with_lines(
    path: Path, limits: Limits
) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """`load_with_lines` for a file, read as `load_yaml` reads it (size from stat first)."""
    try:
        text = _decode(_read(path, limits), limits)
    except _Refused as refused:
        raise _error(refused, str(path), limits, is_yaml=True) from None
    data, root = _yaml_text(text, str(path), limits, sized=True)
    return data, _lines(root)


def _lines(root: yaml.Node | None) -> dict[tuple[str | int, ...], int]:
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        # bounded: the event scan capped depth and values (aliases fully expanded)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*path, index)] = item.start_mark.line + 1
                walk(item, (*path, index))

    if root is not None:
        walk(root, ())
    return lines


def line_map(text: str) -> dict[tuple[str | int, ...], int]:
    """1-based line of every mapping key and sequence item, by path ({} for invalid YAML)."""
    try:
        return load_with_lines(text)[1]
    except yaml.YAMLError:
        return {}


# ---- JSON

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


def _json_first_problem(text: str, limits: Limits) -> _Refused | None:
    """The first too-deep bracket, too-long string, duplicate key or non-finite number,
    in document order, with its line (a slow scan, run only once something is wrong)."""
    stack: list[set[str] | None] = []

    def line(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    for match in _JSON_TOKEN.finditer(text):
        token, string = match.group(), match.group(1)
        if string is not None:
            if len(string) - 2 > limits.max_scalar:
                return _Refused(
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
                    return _Refused(
                        f"key {_show(key)} appears twice in one object",
                        "keep one of them; JSON readers disagree on which one wins.",
                        line(match.start()),
                    )
                top.add(key)
        elif token in ("[", "{"):
            stack.append(set() if token == "{" else None)
            if len(stack) > limits.max_depth:
                return _Refused(
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
            return _Refused(
                f"{_brief(token)} is not a finite JSON number",
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
                raise _Refused(
                    f"key {_show(key)} appears twice in one object",
                    "keep one of them; JSON readers disagree on which one wins.",
                )
            seen.add(key)
    return result


def _json_constant(token: str) -> Any:
    raise _Refused(f"{token} is not a finite JSON number", "write a finite number, or null.")


def _json_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _Refused(
            f"{_brief(token)} is not a finite JSON number", "write a finite number, or null."
        )
    return value


def _json_text(text: str, limits: Limits) -> Any:
    values, depth, longest = _json_shape(text, limits)
    if values > limits.max_nodes:
        raise _Refused(
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
    except _Refused as refused:
        located = _json_first_problem(text, limits)
        raise (located or refused) from None
    except json.JSONDecodeError as exc:
        raise _Refused(
            f"invalid JSON ({exc.msg})", "fix the syntax at that line.", exc.lineno
        ) from None
    except RecursionError:
        raise _Refused(
            f"nests deeper than {limits.max_depth} levels",
            f"flatten it; {limits.a_kind} needs only a few levels.",
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        reason = _one_line(str(exc)).split(": ")[0]
        raise _Refused(f"a value cannot be read ({reason})", "correct the value.") from None


def load_json_bytes(data: bytes, origin: str, limits: Limits) -> Any:
    """The JSON value in `data`, bounded by `limits`; `origin` names it in errors."""
    try:
        return _json_text(_decode(data, limits), limits)
    except _Refused as refused:
        raise _error(refused, origin, limits, is_yaml=False) from None


def load_json(path: Path, limits: Limits) -> Any:
    """The JSON value in the file at `path`, bounded by `limits`."""
    try:
        data = _read(path, limits)
        text = _decode(data, limits)
        del data  # the bytes are not needed once decoded: less to hold while parsing
        return _json_text(text, limits)
    except _Refused as refused:
        raise _error(refused, str(path), limits, is_yaml=False) from None
