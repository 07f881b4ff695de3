"""Bounded YAML: one streaming pass over libyaml's events, then a strict safe parse.

The event pass tracks depth, counts values with every alias at the full size of its
anchor, caps scalars, and refuses explicit tags beyond the safe core and more than one
document; only then is the document composed, refusing duplicate keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from commonshelf.platform.loaders.limits import (
    COMPOSE,
    RECIPE,
    Limits,
    Refused,
    as_error,
    brief,
    one_line,
    show,
)
from commonshelf.platform.loaders.reading import check_size, decode, read_capped

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
    raise Refused(
        f"tag '{brief(shown)}' is not allowed",
        f"remove the tag; {limits.a_kind} holds plain strings, numbers, booleans, null, "
        "lists and mappings.",
        _line(event),
    )


def _scan_events(loader: Any, limits: Limits) -> None:
    """One streaming pass over the parser's events; raises Refused at the first excess.

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
                raise Refused(
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
                raise Refused(
                    f"alias '*{brief(name)}' sits inside its own anchor (a recursive structure)",
                    "write the values out instead of referring back to an enclosing anchor.",
                    _line(event),
                )
            size, height = anchors.get(name, (1, 0))  # unknown: the composer reports it
            if total + size > limits.max_nodes:
                raise Refused(
                    f"alias '*{brief(name)}' expands past {limits.max_nodes} nodes "
                    "(a YAML 'billion laughs')",
                    "write the values out instead of nesting aliases.",
                    _line(event),
                )
            if len(stack) + height > limits.max_depth:
                raise Refused(
                    f"alias '*{brief(name)}' nests deeper than {limits.max_depth} levels",
                    f"flatten it; {limits.a_kind} needs only a few levels.",
                    _line(event),
                )
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if event.tag is not None:
                _check_tag(event, limits)
            if len(stack) >= limits.max_depth:
                raise Refused(
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
                raise Refused(
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


def _too_many(limits: Limits, event: Any) -> Refused:
    return Refused(
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
                    raise Refused(
                        f"key {show(key)} appears twice (first on line {first})",
                        "keep one of them; YAML would silently keep only the last.",
                        _line(key_node),
                    )
                seen[key] = _line(key_node)
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            raise Refused(
                f"{show(node.value)} cannot be read ({one_line(str(exc))})",
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
            check_size(len(text), limits)  # a character is at least one byte
            check_size(len(text.encode("utf-8", "surrogatepass")), limits)
        return _compose(text, limits)
    except Refused as refused:
        raise as_error(refused, origin, limits, is_yaml=True) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if problem == "exceeded maximum nesting depth":  # libyaml's own cap (flow lookahead)
            deep = Refused(
                f"nests deeper than {limits.max_depth} levels",
                f"flatten it; {limits.a_kind} needs only a few levels.",
                mark.line + 1 if mark is not None else None,
            )
            raise as_error(deep, origin, limits, is_yaml=True) from None
        syntax = Refused(  # `problem` bare: the linter prefixes "invalid YAML: "
            one_line(problem),
            "fix the syntax at that line.",
            mark.line + 1 if mark is not None else None,
            tail=f": invalid YAML ({one_line(problem)}).",
        )
        raise as_error(syntax, origin, limits, is_yaml=True) from None
    except (ValueError, OverflowError, RecursionError) as exc:
        value = Refused(f"a value cannot be read ({one_line(str(exc))})", "correct the value.")
        raise as_error(value, origin, limits, is_yaml=True) from None


def load_yaml_bytes(data: bytes, origin: str, limits: Limits) -> Any:
    """The one YAML document in `data`, bounded by `limits`; `origin` names it in errors."""
    try:
        text = decode(data, limits)
    except Refused as refused:
        raise as_error(refused, origin, limits, is_yaml=True) from None
    return _yaml_text(text, origin, limits, sized=True)[0]


def load_yaml(path: Path, limits: Limits) -> Any:
    """The one YAML document in the file at `path`, bounded by `limits`."""
    try:
        data = read_capped(path, limits)
    except Refused as refused:
        raise as_error(refused, str(path), limits, is_yaml=True) from None
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
        text = decode(read_capped(path, limits), limits)
    except Refused as refused:
        raise as_error(refused, str(path), limits, is_yaml=True) from None
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
