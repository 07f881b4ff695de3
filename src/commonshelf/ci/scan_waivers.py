"""A recipe's waivers (`recipes/<app>/.trivyignore.yaml`, trivy's format), typed, and how one
matches a finding. The scan gate (`scan_policy.judge`) applies them itself rather than
handing the file to trivy, so an expired waiver is reported ("waiver expired on D") and
one without a statement or expiry (lint R030/R031) waives nothing.

A waiver matches a finding of its kind by `id` (as trivy reports it: CVE-2024-1234,
private-key, DS-0002, or compose's CS-COMPOSE-*); `paths`, when given, must match the
finding's file (globs, a leading `/` ignored: a secret's file in the image, a
misconfiguration's file in the recipe folder, `image/Dockerfile`); `purls`, when given,
must name its package (`pkg:deb/debian/openssl`, with `@VERSION` that installed version
only). Every constraint given must hold, and a finding without that field fails it: trivy
names no file for most vulnerabilities, so waive those by id and purls, not paths. A
waiver is live up to and including its `expired_at` day, as R031 counts.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import msgspec

from commonshelf.ci.scan import Finding
from commonshelf.platform.errors import RecipeError
from commonshelf.platform.loaders import WAIVERS, load_yaml_with_lines
from commonshelf.recipes.lint.files import WAIVERS as WAIVERS_FILE
from commonshelf.recipes.lint.files import expiry_date

Kind = Literal["vulnerability", "secret", "misconfiguration"]


class _Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    statement: str = ""
    expired_at: Any = None  # a date, or text that may not be one (then it waives nothing)
    paths: tuple[str, ...] = ()
    purls: tuple[str, ...] = ()


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    vulnerabilities: tuple[_Entry, ...] | None = None
    secrets: tuple[_Entry, ...] | None = None
    misconfigurations: tuple[_Entry, ...] | None = None
    licenses: Any = None  # trivy's; licences are not scanned, so these are not read


_KINDS: dict[str, Kind] = {
    "vulnerabilities": "vulnerability",
    "secrets": "secret",
    "misconfigurations": "misconfiguration",
}


@dataclass(frozen=True)
class Waiver:
    """One entry of a recipe's .trivyignore.yaml."""

    kind: Kind
    id: str
    statement: str = ""
    expires: dt.date | None = None
    paths: tuple[str, ...] = ()
    purls: tuple[str, ...] = ()
    where: str = ""  # file:line, for messages

    @property
    def valid(self) -> bool:
        """A statement and an expiry date: anything less waives nothing (R030, R031)."""
        return bool(self.statement.strip()) and self.expires is not None

    def live(self, today: dt.date) -> bool:
        return self.valid and self.expires is not None and today <= self.expires

    def names(self, finding: Finding) -> bool:
        """Kind and id match (whether or not paths and purls do)."""
        return finding.kind == self.kind and finding.id == self.id

    def covers(self, finding: Finding) -> bool:
        """Kind and id match, and so do its paths and purls when it gives any."""
        return (
            self.names(finding)
            and (not self.paths or any(_path_matches(finding.path, p) for p in self.paths))
            and (not self.purls or any(_purl_matches(finding, p) for p in self.purls))
        )


def load_waivers(recipe_dir: Path) -> tuple[Waiver, ...]:
    """The waivers in `recipe_dir/.trivyignore.yaml` (none when there is no such file)."""
    path = recipe_dir / WAIVERS_FILE
    if not path.exists():
        return ()
    data, lines = load_yaml_with_lines(path, WAIVERS)  # a RecipeError when refused
    try:
        parsed = msgspec.convert({} if data is None else data, _File)
    except msgspec.ValidationError as exc:
        raise RecipeError(
            f"{located(path, lines, str(exc))}: {problem(str(exc))}.",
            "write trivy's format: `vulnerabilities:`, `secrets:` or `misconfigurations:`, "
            "each a list of entries with id, statement, expired_at and optional paths/purls.",
        ) from None
    waivers: list[Waiver] = []
    for key, kind in _KINDS.items():
        for index, entry in enumerate(getattr(parsed, key) or ()):
            waivers.append(
                Waiver(
                    kind=kind,
                    id=entry.id,
                    statement=entry.statement,
                    expires=expiry_date(entry.expired_at),
                    paths=entry.paths,
                    purls=entry.purls,
                    where=f"{path}:{lines.get((key, index), '?')}",
                )
            )
    return tuple(waivers)


def _path_matches(path: str, pattern: str) -> bool:
    return bool(path) and fnmatch.fnmatchcase(path.lstrip("/"), pattern.lstrip("/"))


def _purl_matches(finding: Finding, purl: str) -> bool:
    """`pkg:TYPE/[NAMESPACE/]NAME[@VERSION][?…][#…]` names the finding's package."""
    if not finding.package or not purl.startswith("pkg:"):
        return False
    body = purl[4:].split("#", 1)[0].split("?", 1)[0]
    body, _, version = body.partition("@")
    name = unquote(body.rstrip("/").rsplit("/", 1)[-1])
    if name.casefold() != finding.package.casefold():
        return False
    return not version or unquote(version) == finding.installed


# ---- msgspec's complaints, in the file's words


_PATH = re.compile(r" - at `\$((?:\.[A-Za-z_]\w*|\[\d+\])*)`$")
_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]")


def located(path: Path, lines: dict[tuple[str | int, ...], int], message: str) -> str:
    """`path:line` of the value msgspec's message points at (`- at $.block[0].kind`)."""
    match = _PATH.search(message)
    steps: tuple[str | int, ...] = ()
    if match:
        steps = tuple(n if n else int(i) for n, i in _STEP.findall(match.group(1)))
    while steps and steps not in lines:
        steps = steps[:-1]
    return f"{path}:{lines[steps]}" if steps else str(path)


def problem(message: str) -> str:
    """msgspec's message in the file's words: 'Invalid enum value 'HUGE' at block[0]…'."""
    text, _, at = message.partition(" - at `$")
    text = text.replace("Invalid enum value", "invalid value").replace("`", "")
    text = text.replace("Object contains unknown", "unknown").replace("Object missing", "missing")
    at = at.rstrip("`").lstrip(".")
    text = text[:1].lower() + text[1:]
    return f"{text} (at {at})" if at else text
