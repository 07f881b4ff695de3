"""The bounded loaders: every hostile file is refused in one line naming it; real files load."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commonshelf.platform import loaders
from commonshelf.platform.errors import CommonshelfError, RecipeError
from commonshelf.platform.loaders import (
    CATALOGUE,
    COMPOSE,
    EVIDENCE,
    RECIPE,
    STATE,
    WAIVERS,
    InputError,
    Limits,
    line_map,
    load_json,
    load_json_bytes,
    load_with_lines,
    load_yaml,
    load_yaml_bytes,
    load_yaml_with_lines,
)
from commonshelf.recipes.model import load_recipe

REPO = Path(__file__).resolve().parents[2]
HOSTILE = REPO / "tests" / "hostile"

Loader = Callable[[Path, Limits], Any]
BytesLoader = Callable[[bytes, str, Limits], Any]
# file name ending -> (path loader, bytes loader, limits)
KINDS: dict[str, tuple[Loader, BytesLoader, Limits]] = {
    ".recipe.yml": (load_yaml, load_yaml_bytes, RECIPE),
    ".compose.yml": (load_yaml, load_yaml_bytes, COMPOSE),
    ".trivyignore.yaml": (load_yaml, load_yaml_bytes, WAIVERS),
    ".catalog.json": (load_json, load_json_bytes, CATALOGUE),
    ".evidence.json": (load_json, load_json_bytes, EVIDENCE),
    ".state.json": (load_json, load_json_bytes, STATE),
}
CORPUS = sorted(p for p in HOSTILE.iterdir() if p.name != "README.md")

# what each refusal says, and on which line (None: no line is known)
EXPECTED: dict[str, tuple[str, int | None]] = {
    "laughs.recipe.yml": ("billion laughs", 7),
    "laughs.compose.yml": ("billion laughs", 8),
    "recursive.recipe.yml": ("inside its own anchor", 2),
    "deep-flow.recipe.yml": ("nests deeper than 16 levels", 1),
    "deep-block.compose.yml": ("nests deeper than 24 levels", 2),
    "deep-indent.trivyignore.yaml": ("nests deeper than 8 levels", 9),
    "deep.catalog.json": ("nests deeper than 16 levels", 1),
    "deep-objects.state.json": ("nests deeper than 8 levels", 1),
    "huge-scalar.recipe.yml": ("60000 characters", 3),
    "huge-string.state.json": ("100000 characters", 1),
    "oversize.recipe.yml": ("over the 64 KiB", None),
    "wide.compose.yml": ("more than 50000 values", 1),
    "wide.state.json": ("over the 20000", None),
    "dupkeys.recipe.yml": ("key 'name' appears twice (first on line 2)", 4),
    "dupkeys.compose.yml": ("key 'privileged' appears twice", 5),
    "dupkeys.catalog.json": ("key 'web' appears twice", 5),
    "nonutf8.compose.yml": ("byte 0xe9", 5),
    "nonutf8.catalog.json": ("byte 0xe9", 1),
    "python-tag.recipe.yml": ("tag '!!python/object/apply:os.system' is not allowed", 2),
    "binary-tag.compose.yml": ("tag '!!binary' is not allowed", 3),
    "set-tag.trivyignore.yaml": ("tag '!!set' is not allowed", 1),
    "custom-tag.compose.yml": ("tag '!Ref' is not allowed", 3),
    "multidoc.compose.yml": ("more than one YAML document", 4),
    "nan.catalog.json": ("NaN is not a finite JSON number", 3),
    "infinity.evidence.json": ("1e999 is not a finite JSON number", 3),
    "bigint.state.json": ("4300 digits", None),
}


def _kind(path: Path) -> tuple[Loader, BytesLoader, Limits]:
    return next(kind for suffix, kind in KINDS.items() if path.name.endswith(suffix))


def _refusal(call: Callable[[], Any]) -> InputError:
    with pytest.raises(InputError) as caught:
        call()
    return caught.value


def _assert_one_line(error: CommonshelfError, origin: str) -> None:
    text = str(error)
    assert "\n" not in text and "\r" not in text
    assert text.startswith(origin)
    assert " Fix: " in text and error.fix


# ---- the corpus


def test_corpus_is_big_enough_small_on_disk_and_documented() -> None:
    readme = (HOSTILE / "README.md").read_text()
    assert len(CORPUS) >= 12
    assert set(EXPECTED) == {p.name for p in CORPUS}
    for path in CORPUS:
        assert path.stat().st_size < 300_000, path
        assert f"`{path.name}`" in readme, f"{path.name} is not described in the README"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_each_hostile_file_is_refused_in_one_line_naming_it(path: Path) -> None:
    load, _, limits = _kind(path)
    error = _refusal(lambda: load(path, limits))
    _assert_one_line(error, str(path))
    wanted, line = EXPECTED[path.name]
    assert wanted in error.what
    assert error.line == line
    if line is not None:
        assert error.what.startswith(f"{path}:{line}: ")
    assert isinstance(error, RecipeError) == limits.recipe  # recipe folder files: RecipeError
    assert isinstance(error, yaml.YAMLError) == path.name.endswith((".yml", ".yaml"))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_bytes_from_elsewhere_are_refused_alike(path: Path) -> None:
    _, load_bytes, limits = _kind(path)
    origin = f"mirror:{path.name}"
    error = _refusal(lambda: load_bytes(path.read_bytes(), origin, limits))
    _assert_one_line(error, origin)
    assert EXPECTED[path.name][0] in error.what


@pytest.mark.parametrize(
    "path",
    [p for p in CORPUS if p.name.endswith((".yml", ".yaml")) and "nonutf8" not in p.name],
    ids=lambda p: p.name,
)
def test_the_linters_path_refuses_them_as_yaml_errors(path: Path) -> None:
    _, _, limits = _kind(path)
    text = path.read_text()
    with pytest.raises(yaml.YAMLError) as caught:
        load_with_lines(text, path.name, limits)
    error = caught.value
    assert isinstance(error, InputError)
    assert error.problem and "\n" not in error.problem
    mark = getattr(error, "problem_mark", None)
    assert (mark.line + 1 if mark else None) == EXPECTED[path.name][1]
    within_compose_limits = {"oversize.recipe.yml", "huge-scalar.recipe.yml"}
    assert line_map(text) == {} or path.name in within_compose_limits  # line_map: COMPOSE


def test_a_hostile_recipe_is_a_recipe_error_for_load_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "recipes" / "custom-html"
    shutil.copytree(REPO / "recipes" / "custom-html", recipe)
    shutil.copy(HOSTILE / "laughs.recipe.yml", recipe / "recipe.yml")
    with pytest.raises(RecipeError, match=r"recipe\.yml:7: alias '\*l3' expands past 20000"):
        load_recipe(recipe)
    shutil.copy(REPO / "recipes" / "custom-html" / "recipe.yml", recipe / "recipe.yml")
    shutil.copy(HOSTILE / "laughs.compose.yml", recipe / "compose.yml")
    with pytest.raises(RecipeError, match=r"compose\.yml:8: alias '\*m3' expands past 50000"):
        load_recipe(recipe)


# ---- size, encoding, files


def test_size_is_refused_from_stat_before_reading(tmp_path: Path) -> None:
    sparse = tmp_path / "huge.catalog.json"
    with sparse.open("wb") as handle:  # 1 GiB that takes no disk space
        handle.truncate(1 << 30)
    error = _refusal(lambda: load_json(sparse, CATALOGUE))
    assert error.what == f"{sparse}: is 1073741824 bytes, over the 16 MiB a catalog.json may have."


def test_missing_directory_and_non_utf8(tmp_path: Path) -> None:
    missing = _refusal(lambda: load_yaml(tmp_path / "compose.yml", COMPOSE))
    assert missing.what == f"{tmp_path / 'compose.yml'} is missing."
    assert isinstance(missing, RecipeError)
    assert "is missing" in _refusal(lambda: load_json(tmp_path / "x.json", STATE)).what
    assert "not a regular file" in _refusal(lambda: load_json(tmp_path, STATE)).what
    bad = _refusal(lambda: load_json_bytes(b'{\n"a":\n"\xc3"}', "s.json", STATE))
    assert bad.line == 3 and "not UTF-8" in bad.what


def test_invalid_syntax_keeps_the_wording_and_line() -> None:
    error = _refusal(lambda: load_yaml_bytes(b"a: 1\nb: [unclosed\n", "r.yml", RECIPE))
    assert error.what.startswith("r.yml:3: invalid YAML (")
    assert error.problem.startswith("did not find expected")  # bare, for the linter
    error = _refusal(lambda: load_json_bytes(b'{\n"a": 1,\n}', "c.json", CATALOGUE))
    assert error.what.startswith("c.json:3: invalid JSON (") and error.line == 3


def test_values_from_the_input_cannot_break_the_line() -> None:
    error = _refusal(lambda: load_json_bytes(b'{"a\\nb": 1, "a\\nb": 2}', "c.json", STATE))
    _assert_one_line(error, "c.json")
    error = _refusal(lambda: load_yaml_bytes(b'"a\\nb": 1\n"a\\nb": 2\n', "r.yml", RECIPE))
    _assert_one_line(error, "r.yml:2")


# ---- what still loads


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes").iterdir()), ids=lambda p: p.name)
def test_bundled_recipes_and_compose_files_load(recipe: Path) -> None:
    assert load_yaml(recipe / "recipe.yml", RECIPE)["name"] == recipe.name
    assert "services" in load_yaml(recipe / "compose.yml", COMPOSE)


def test_the_published_catalogue_and_fixture_waivers_load() -> None:
    if (REPO / "catalog.json").exists():
        assert "apps" in load_json(REPO / "catalog.json", CATALOGUE)
    for path in (REPO / "tests" / "fixtures").rglob(".trivyignore.yaml"):
        assert "vulnerabilities" in load_yaml(path, WAIVERS)


def test_load_with_lines_gives_data_and_lines() -> None:
    text = "a: 1\nb:\n  - x\n  - {c: 2}\nd: &base {e: 3}\nf:\n  <<: *base\n  e: 4\n"
    data, lines = load_with_lines(text)
    assert data == {"a": 1, "b": ["x", {"c": 2}], "d": {"e": 3}, "f": {"e": 4}}
    assert lines[("a",)] == 1 and lines[("b",)] == 2 and lines[("b", 0)] == 3
    assert lines[("b", 1)] == 4 and lines[("b", 1, "c")] == 4
    assert lines[("f", "e")] == 8
    assert line_map(text) == lines
    assert load_with_lines("") == (None, {})


def test_load_yaml_with_lines_reads_a_file_bounded(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yml"
    path.write_text("a: 1\nb:\n  - x\n")
    assert load_yaml_with_lines(path, RECIPE) == (
        {"a": 1, "b": ["x"]},
        {("a",): 1, ("b",): 2, ("b", 0): 3},
    )
    error = _refusal(lambda: load_yaml_with_lines(HOSTILE / "oversize.recipe.yml", RECIPE))
    assert "over the 64 KiB" in error.what and isinstance(error, yaml.YAMLError)


def test_safe_core_tags_timestamps_and_one_explicit_document_load() -> None:
    text = b"---\na: !!str 1\nb: !!int '2'\nc: !!float 3\nd: !!null ''\ne: !!seq [1]\n"
    text += b"f: !!map {g: !!bool true}\nwhen: 2024-01-31\n...\n"
    data = load_yaml_bytes(text, "x.yml", RECIPE)
    assert data["a"] == "1" and data["b"] == 2 and data["c"] == 3.0 and data["d"] is None
    assert data["e"] == [1] and data["f"] == {"g": True}
    assert str(data["when"]) == "2024-01-31"


def test_aliases_within_the_limits_still_load() -> None:
    text = b"a: &a [1, 2, 3]\nb: [*a, *a]\nc: *a\n"
    assert load_yaml_bytes(text, "x.yml", RECIPE) == {
        "a": [1, 2, 3],
        "b": [[1, 2, 3], [1, 2, 3]],
        "c": [1, 2, 3],
    }


def test_the_module_reads_nothing_unbounded() -> None:
    source = Path(loaders.__file__).read_text()
    assert "safe_load" not in source and "yaml.load(" not in source
    assert "yaml.Loader" not in source and "UnsafeLoader" not in source


# ---- properties

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)


def _depth(value: Any) -> int:
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict | list):
        return 1 + max((_depth(v) for v in children), default=0)
    return 0


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_json_within_limits_round_trips(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, indent=2)):
        if _depth(value) <= STATE.max_depth:
            assert load_json_bytes(text.encode(), "v.json", STATE) == value
        else:
            assert (
                "nests deeper"
                in _refusal(lambda text=text: load_json_bytes(text.encode(), "v.json", STATE)).what
            )


@settings(max_examples=100, deadline=None)
@given(value=json_values)
def test_yaml_within_limits_round_trips(value: Any) -> None:
    text = yaml.safe_dump(value).encode()  # non-ASCII escaped: PyYAML folds a raw NEL
    if _depth(value) <= RECIPE.max_depth:
        assert load_yaml_bytes(text, "v.yml", RECIPE) == value


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(1, 60))
def test_depth_is_capped_exactly(depth: int) -> None:
    flow = "[" * depth + "]" * depth
    for load, limits in ((load_yaml_bytes, RECIPE), (load_json_bytes, CATALOGUE)):
        if depth <= limits.max_depth:
            load(flow.encode(), "d", limits)
        else:
            assert (
                "nests deeper"
                in _refusal(lambda load=load, limits=limits: load(flow.encode(), "d", limits)).what
            )


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 12), levels=st.integers(1, 8))
def test_alias_expansion_is_counted_in_full(width: int, levels: int) -> None:
    lines = ["l0: &a0 [" + ", ".join(["x"] * width) + "]"]
    size, total = 1 + width, 1 + 1 + (1 + width)  # root, key l0, its list
    for level in range(1, levels):
        lines.append(f"l{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
        size = 1 + width * size
        total += 1 + size
    text = ("\n".join(lines) + "\n").encode()
    if total <= RECIPE.max_nodes:
        assert len(load_yaml_bytes(text, "l.yml", RECIPE)) == levels
    else:
        assert "billion laughs" in _refusal(lambda: load_yaml_bytes(text, "l.yml", RECIPE)).what


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_give_data_or_an_input_error(data: bytes) -> None:
    for load in (load_yaml_bytes, load_json_bytes):
        try:
            load(data, "fuzz", RECIPE)
        except InputError as exc:
            _assert_one_line(exc, "fuzz")
