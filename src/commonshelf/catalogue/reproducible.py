"""The committed catalog.json as a function of its inputs: same inputs, same bytes, and
nothing about the machine that released it.

Times come from the source, not the clock: `source_date` is SOURCE_DATE_EPOCH when set (the
reproducible-builds convention), else the committer date of the checked-out commit, so a
release rerun from the same commit on another runner writes the same `generated`, `released`
and `rebuilt`. The text CI writes about its tools is made portable (`portable`): a path on the
build machine (a worker's trivy cache) is reduced to its file name. `machine_local` finds what
is left: the release refuses to write it, and a unit test checks the committed file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from commonshelf.catalogue.catalog import Catalog
from commonshelf.platform.errors import CommonshelfError, ReleaseError
from commonshelf.platform.proc import run

# An absolute filesystem path of two segments or more, not part of a URL or image reference
# (`127.0.0.1:5000/commonshelf/x@sha256:…` and `https://host/a/b` are not paths).
_PATH = re.compile(r"(?<![\w.:/@-])/[\w.@+-]+(?:/[\w.@+-]*)+")
# Folders no catalogue has a reason to name, even in prose: temporary, home and state folders.
_HOST_PREFIXES = ("/tmp/", "/var/tmp/", "/root/", "/home/", "/var/lib/commonshelf/", "/work/")
# Fields that describe the app's containers (paths there are the contract, not the host's).
_CONTAINER_SIDE = ("runtime", "where")
# Authored prose (recipe metadata, changelogs, waiver statements, advisory titles): only host
# folders are refused there.
_PROSE = ("title", "description", "changes", "statement", "reason")
# What CI writes about its own tools in free text: paths there are made portable.
_TOOL_TEXT = ("vuln_db", "summary")


def source_date(root: Path, env: Mapping[str, str] | None = None) -> str:
    """The release's time (UTC, ISO 8601, seconds): SOURCE_DATE_EPOCH, else the committer
    date of `root`'s checked-out commit, else (no git) the clock."""
    env = os.environ if env is None else env
    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if raw:
        if not raw.isdigit():
            raise CommonshelfError(
                f"SOURCE_DATE_EPOCH is '{raw}', not a number of seconds since 1970.",
                "unset it (the commit's date is used) or set e.g. SOURCE_DATE_EPOCH=$(git log "
                "-1 --format=%ct).",
            )
        seconds = int(raw)
    else:
        try:
            out = run(["git", "-C", str(root), "log", "-1", "--format=%ct"], fix="", timeout=10)
            seconds = int(out.strip())
        except (CommonshelfError, ValueError):
            return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _basenames(text: str) -> str:
    return _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def _portable(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _portable(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v, key) for v in value]
    if isinstance(value, str) and key in _TOOL_TEXT:
        return _basenames(value)
    return value


def portable(catalog: Catalog) -> Catalog:
    """The catalogue with build-machine paths in CI's tool text reduced to file names
    (`/var/lib/commonshelf/trivy-workers/vet_1/db/trivy.db (…)` becomes `trivy.db (…)`).
    Idempotent; nothing an installation or a rebuild reads changes."""
    builtins = msgspec.to_builtins(catalog)
    return msgspec.convert(_portable(builtins), Catalog)


def _strings(value: Any, where: str = "") -> Iterator[tuple[str, str, str]]:
    """(path, last key, text) of every string; container-side subtrees are skipped."""
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key) not in _CONTAINER_SIDE:
                yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")
    elif isinstance(value, str):
        yield where, where.rpartition(".")[2].split("[")[0], value


def machine_local(catalog: Catalog, also: Iterable[Path] = ()) -> list[str]:
    """`path: text` of every string that names a place on the machine that released it:
    any absolute path in what CI wrote, and host folders (temporary, home, state, and the
    folders in `also`, e.g. the checkout) anywhere but the runtime contract, whose paths are
    the app's container's."""
    prefixes = _HOST_PREFIXES + tuple(f"{Path(p).as_posix().rstrip('/')}/" for p in also)
    found = []
    for where, key, text in _strings(msgspec.to_builtins(catalog)):
        paths = _PATH.findall(text)
        local = any(f"{path}/".startswith(prefixes) for path in paths)
        if local or (paths and key not in _PROSE):
            found.append(f"{where}: {text}")
    return found


def release_bytes(catalog: Catalog) -> bytes:
    """catalog.json as the release writes it: portable, and refused if still machine-local."""
    ready = portable(catalog)
    left = machine_local(ready)
    if left:
        raise ReleaseError(
            f"catalog.json would name places on this machine: {'; '.join(left[:3])}.",
            "write portable text there (a file name or a registry reference, not a local path).",
        )
    return ready.to_bytes()
