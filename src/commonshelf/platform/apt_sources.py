"""The Debian mirror the host's own apt uses, for building the base image.

No mirror is written into the project: debootstrap uses the mirror named by
COMMONSHELF_DEBIAN_MIRROR, else the one the host's apt sources name for the
main archive. deb822 files (`sources.list.d/*.sources`) are read first, then
one-line files (`sources.list`, `sources.list.d/*.list`). An entry counts when
it is of type `deb`, its URI is http(s) (cdrom:, file: and the like cannot
serve debootstrap) and one of its suites is a Debian main-archive suite (not
`-security`, `-updates`, `-backports`); an entry of the base image's suite wins
over one of another Debian release.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from commonshelf.platform.errors import EnvironmentNotReady

ENV_VAR = "COMMONSHELF_DEBIAN_MIRROR"
SOURCES_LIST = Path("/etc/apt/sources.list")
SOURCES_DIR = Path("/etc/apt/sources.list.d")
BASE_SUITE = "bookworm"  # shared/base/base.yml's suite
# Suites of Debian's main archive (codenames and aliases); any with a "-" is a
# pocket (security, updates, backports) served elsewhere or incomplete.
DEBIAN_SUITES = frozenset(
    {
        "buster",
        "bullseye",
        "bookworm",
        "trixie",
        "forky",
        "duke",
        "sid",
        "oldoldstable",
        "oldstable",
        "stable",
        "testing",
        "unstable",
    }
)
_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class AptSource:
    """One `deb` entry: a URI and the suites fetched from it."""

    uri: str
    suites: tuple[str, ...]
    origin: str  # "file:line", for messages


def parse_deb822(text: str, origin: str = "<deb822>") -> list[AptSource]:
    """The `deb` entries of a deb822 `.sources` file (other types and `Enabled: no` skipped)."""
    entries: list[AptSource] = []
    fields: dict[str, str] = {}
    start = 0
    last = ""

    def flush() -> None:
        types = fields.get("types", "").split()
        if "deb" in types and fields.get("enabled", "yes").strip().lower() != "no":
            suites = tuple(fields.get("suites", "").split())
            for uri in fields.get("uris", "").split():
                entries.append(AptSource(uri, suites, f"{origin}:{start}"))
        fields.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if fields:
                flush()
            last = ""
            continue
        if line.startswith("#"):
            continue
        if line[0] in " \t":  # continuation of a multi-line field (e.g. an inline Signed-By key)
            if last:
                fields[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        if not fields:
            start = number
        last = name.strip().lower()
        fields[last] = value.strip()
    if fields:
        flush()
    return entries


def parse_one_line(text: str, origin: str = "<sources.list>") -> list[AptSource]:
    """The `deb` entries of a one-line `sources.list`: `deb [opts] URI suite comp…`."""
    entries: list[AptSource] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()  # apt ignores everything after a '#'
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind != "deb":
            continue
        rest = rest.strip()
        if rest.startswith("["):
            _, bracket, rest = rest.partition("]")
            if not bracket:
                continue  # unterminated options: apt rejects the line too
        words = rest.split()
        if len(words) >= 2:
            entries.append(AptSource(words[0], (words[1],), f"{origin}:{number}"))
    return entries


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def pick_mirror(sources: Iterable[AptSource], suite: str = BASE_SUITE) -> str | None:
    """The URI of the first entry serving `suite` from the main archive, else of the first
    serving another Debian release's main archive; None when no entry does."""
    other: str | None = None
    for source in sources:
        if not source.uri.startswith(_SCHEMES):
            continue
        uri = source.uri.rstrip("/")
        if suite in source.suites:
            return uri
        if other is None and any(s in DEBIAN_SUITES for s in source.suites):
            other = uri
    return other


def host_mirror(
    sources_list: Path | None = None, sources_dir: Path | None = None, suite: str = BASE_SUITE
) -> str | None:
    """The mirror the host's apt sources name (deb822 files first), or None."""
    sources_list = SOURCES_LIST if sources_list is None else sources_list
    sources_dir = SOURCES_DIR if sources_dir is None else sources_dir
    deb822 = [
        entry
        for path in sorted(sources_dir.glob("*.sources"))
        for entry in parse_deb822(_read(path), str(path))
    ]
    found = pick_mirror(deb822, suite)
    if found:
        return found
    one_line = [
        entry
        for path in [sources_list, *sorted(sources_dir.glob("*.list"))]
        for entry in parse_one_line(_read(path), str(path))
    ]
    return pick_mirror(one_line, suite)


def no_mirror_error(
    sources_list: Path | None = None, sources_dir: Path | None = None
) -> EnvironmentNotReady:
    """The one-line error for a host whose apt sources name no usable mirror."""
    sources_list = SOURCES_LIST if sources_list is None else sources_list
    sources_dir = SOURCES_DIR if sources_dir is None else sources_dir
    return EnvironmentNotReady(
        f"No Debian mirror for the base image: neither {ENV_VAR} nor the host's apt sources "
        f"({sources_dir}/*.sources, {sources_list}) name an http(s) mirror of Debian's main "
        "archive.",
        f"set {ENV_VAR} to the URL of a Debian mirror (the archive root that holds dists/).",
    )


def debian_mirror(
    env: Mapping[str, str] | None = None,
    *,
    sources_list: Path | None = None,
    sources_dir: Path | None = None,
    suite: str = BASE_SUITE,
) -> str:
    """COMMONSHELF_DEBIAN_MIRROR if set, else the host's mirror; raises EnvironmentNotReady."""
    env = os.environ if env is None else env
    override = env.get(ENV_VAR, "").strip()
    if override:
        return override.rstrip("/")
    found = host_mirror(sources_list, sources_dir, suite)
    if found is None:
        raise no_mirror_error(sources_list, sources_dir)
    return found
