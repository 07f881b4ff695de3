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

The modules: `limits` (the limits and the errors), `reading` (size and encoding),
`yaml_loader` and `json_loader`. Import from this package, not from them.
"""

from __future__ import annotations

from commonshelf.platform.loaders.json_loader import load_json, load_json_bytes
from commonshelf.platform.loaders.limits import (
    ADVISORIES,
    BASE,
    CATALOGUE,
    COMPOSE,
    EVIDENCE,
    RECIPE,
    REPORT,
    STATE,
    VARIABLE,
    WAIVERS,
    InputError,
    KiB,
    Limits,
    MiB,
    RecipeInputError,
    YAMLInputError,
)
from commonshelf.platform.loaders.yaml_loader import (
    SAFE_TAGS,
    Loader,
    line_map,
    load_with_lines,
    load_yaml,
    load_yaml_bytes,
    load_yaml_with_lines,
    read_yaml,
)

__all__ = [
    "ADVISORIES",
    "BASE",
    "CATALOGUE",
    "COMPOSE",
    "EVIDENCE",
    "RECIPE",
    "REPORT",
    "SAFE_TAGS",
    "STATE",
    "VARIABLE",
    "WAIVERS",
    "InputError",
    "KiB",
    "Limits",
    "Loader",
    "MiB",
    "RecipeInputError",
    "YAMLInputError",
    "line_map",
    "load_json",
    "load_json_bytes",
    "load_with_lines",
    "load_yaml",
    "load_yaml_bytes",
    "load_yaml_with_lines",
    "read_yaml",
]
