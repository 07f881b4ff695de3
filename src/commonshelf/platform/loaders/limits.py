"""How much of each kind of input the shelf reads, and how a refusal reads.

`Limits` and the named limits of every kind of input; `InputError` and its two
subclasses (see the package's docstring); `Refused`, raised below the public loaders
before the origin is known, and `as_error`, which turns it into the right `InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass

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
# shared/policy/scan.yml: the scan gate's rules and exceptions, ~2 KiB (mostly comments),
# 4 levels deep; an exception's reason is a paragraph.
SCAN_POLICY = Limits("scan.yml", 64 * KiB, 8, 10_000, 4 * KiB)
# shared/advisories/*.yml: readable advisories the vulnerability DB is built from (~200
# bytes each); 4 MiB holds tens of thousands.
ADVISORIES = Limits("advisory file", 4 * MiB, 8, 400_000, 16 * KiB)
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
# trivy's JSON output (its report on an image or a folder, `--version`, its DB's
# metadata.json): the shelf's own binary on images the shelf built, but the findings quote
# the image's files (secret matches, package names, advisory texts). A report on a Debian
# image with a real DB is a few MiB, ~10 levels deep, advisories a few KiB each. Far above
# the files above: a report at the limit costs a few hundred MB to parse.
REPORT = Limits("trivy report", 64 * MiB, 32, 1_000_000, 1 * MiB)
# shared/base/base.yml: the base image's debootstrap definition (suite, variant, a list of
# packages), under 1 KiB.
BASE = Limits("base.yml", 64 * KiB, 8, 10_000, 4 * KiB)
# JSON handed to a child process in an environment variable (COMMONSHELF_IMAGES: service ->
# image); Linux caps one variable at 128 KiB.
VARIABLE = Limits("JSON environment variable", 64 * KiB, 8, 10_000, 4 * KiB)


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
        super().__init__(one_line(what or f"{where}: {problem}."), one_line(fix))
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


def one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def show(value: object, width: int = 40) -> str:
    """A value quoted for a message (repr, shortened)."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def brief(text: str, width: int = 40) -> str:
    """Text from the input for a message: one line, shortened."""
    return one_line(text if len(text) <= width else text[: width - 3] + "...")


def size_text(count: int) -> str:
    if count >= MiB and count % MiB == 0:
        return f"{count // MiB} MiB"
    if count >= KiB and count % KiB == 0:
        return f"{count // KiB} KiB"
    return f"{count} bytes"


class Refused(Exception):
    """A refusal found below the public functions, before the origin is attached."""

    def __init__(self, problem: str, fix: str, line: int | None = None, *, tail: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.line = line
        self.tail = tail  # what follows "file:line" when ": {problem}." does not fit


def as_error(refused: Refused, origin: str, limits: Limits, *, is_yaml: bool) -> InputError:
    cls = RecipeInputError if limits.recipe else YAMLInputError if is_yaml else InputError
    where = f"{origin}:{refused.line}" if refused.line is not None else origin
    what = where + refused.tail if refused.tail else ""
    return cls(origin, refused.problem, refused.fix, refused.line, what=what)
