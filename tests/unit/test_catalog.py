"""The catalogue model: newest version by semver, typed decoding with clear errors (file and
JSON path), stable bytes, and the released versions of any schema so far."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest

from commonshelf.catalogue.catalog import (
    SCHEMA,
    Catalog,
    CatalogError,
    ReleasedVersion,
    released_records,
)
from commonshelf.catalogue.contract import (
    BackupHooks,
    CheckOutcome,
    DataVolume,
    MainService,
    Migration,
    PlatformComponent,
    Resources,
    Runtime,
    ScanSummary,
    SecretSpec,
    ServiceImage,
    Setting,
    TestSummary,
    UpgradeProof,
    VersionEntry,
    Vetting,
)
from commonshelf.platform.errors import CommonshelfError

DATA = Path(__file__).parent / "data"
ORIGIN = "mirror/catalog.json"
DIGEST = "sha256:" + "b" * 64


def _entry(version: str, commit: str = "c" * 40, **runtime: Any) -> VersionEntry:
    return VersionEntry(
        released="2026-01-01T00:00:00Z",
        commit=commit,
        content_hash="h" * 64,
        runtime=Runtime(
            compose=f"apps/web/{version}/compose.yml",
            services={"app": ServiceImage(image=f"reg/web@{DIGEST}", digest=DIGEST)},
            main=MainService(service="app", port=8080, health="/healthz"),
            **runtime,
        ),
        vetting=Vetting(level=7),
    )


def _full_entry(version: str) -> VersionEntry:
    """A version that uses every optional part of the contract."""
    entry = _entry(
        version,
        data=(DataVolume(volume="content", service="app", path="/srv", description="site"),),
        backup=BackupHooks(service="app", pre=("sync",), restore=("reload",)),
        secrets={"db_password": SecretSpec(description="database", length=24)},
        settings={
            "SITE": Setting(default="web", description="name"),
            "WORKERS": Setting(default=2, description="processes"),
            "RATIO": Setting(default=0.5, description="share"),
            "GZIP": Setting(default=True, description="compress"),
        },
        migration=Migration(kind="manual", note="export first"),
        resources=Resources(memory_mb=256),
        architectures=("amd64", "arm64"),
    )
    return msgspec.structs.replace(
        entry,
        changes="- first",
        vetting=Vetting(
            level=7,
            checks={"install": CheckOutcome(status="passed", seconds=1.5)},
            upgrade=UpgradeProof(from_version="0.9.0+1", probes=40, failed=0, seconds=9.0),
            tests=TestSummary(passed=5, summary="5 passed"),
            scan=ScanSummary(counts={"CRITICAL": 0}, summary="clean"),
        ),
    )


def _catalog(order: tuple[str, ...] = ("1.0.0+1.22.1", "1.10.0+1.24.0", "1.2.0+1.22.1")) -> Catalog:
    catalog = Catalog(generated="2026-01-01T00:00:00Z", commit="c" * 40)
    catalog.platform = {
        "proxy": PlatformComponent(
            version="1", image=f"reg/proxy@{DIGEST}", digest=DIGEST, compose="platform/p.yml"
        )
    }
    for version in order:
        catalog.add_version("web", "Web", "A site", "website", version, _full_entry(version))
    catalog.add_version("blog", "Blog", "Words", "website", "0.1.0+1", _entry("0.1.0+1"))
    return catalog


# ---- queries


def test_latest_is_by_semver_not_by_string() -> None:
    assert _catalog().latest("web") == "1.10.0+1.24.0"
    assert _catalog().version("web")[0] == "1.10.0+1.24.0"
    assert _catalog().latest("nope") is None and _catalog().versions("nope") == {}


def test_unknown_app_and_version_name_the_choices() -> None:
    with pytest.raises(CatalogError, match=r"apps: blog, web"):
        _catalog().version("nope")
    with pytest.raises(CatalogError, match=r"published: 1\.0\.0\+1\.22\.1, 1\.2\.0"):
        _catalog().version("web", "3.0.0+1")
    with pytest.raises(CatalogError, match=r"apps: none"):
        Catalog().version("web")


def test_add_version_keeps_earlier_versions_and_updates_the_app() -> None:
    catalog = _catalog()
    catalog.add_version("web", "Web 2", "New", "tools", "2.0.0+1", _entry("2.0.0+1"))
    app = catalog.apps["web"]
    assert (app.title, app.description, app.category) == ("Web 2", "New", "tools")
    assert len(app.versions) == 4 and catalog.version("web", "1.0.0+1.22.1")[1].vetting.level == 7


def test_a_missing_catalogue_is_empty(tmp_path: Path) -> None:
    assert Catalog.load(tmp_path / "catalog.json") == Catalog()
    (tmp_path / "catalog.json").write_bytes(_catalog().to_bytes())
    assert Catalog.load(tmp_path / "catalog.json") == _catalog()


# ---- bytes


def test_round_trip_is_equal_and_byte_stable() -> None:
    catalog = _catalog()
    data = catalog.to_bytes()
    again = Catalog.from_bytes(data)
    assert again == catalog
    assert again.to_bytes() == data == catalog.to_bytes()
    settings = again.apps["web"].versions["1.0.0+1.22.1"].runtime.settings
    assert {k: type(s.default) for k, s in settings.items()} == {
        "SITE": str,
        "WORKERS": int,
        "RATIO": float,
        "GZIP": bool,
    }


def test_bytes_do_not_depend_on_insertion_order() -> None:
    data = _catalog().to_bytes()
    assert _catalog(("1.2.0+1.22.1", "1.10.0+1.24.0", "1.0.0+1.22.1")).to_bytes() == data
    assert data.endswith(b"}\n") and b'\n  "apps": {\n' in data
    keys = list(json.loads(data))
    assert keys == sorted(keys)
    assert json.loads(data)["schema"] == SCHEMA == 2


def test_the_committed_catalogue_reads() -> None:
    path = Path(__file__).resolve().parents[2] / "catalog.json"
    catalog = Catalog.load(path)
    assert catalog.schema == SCHEMA


# ---- refusals


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"schema": 99, "apps": {}}', "schema 99, this Commonshelf reads schema 2"),
        (b'{"apps": {}}', "schema None"),
        (b"[]", "schema None"),
        (b'{"schema": "2", "apps": {}}', "schema 2,"),  # a string is not the number 2
        (b'{"schema": 2, "apps": []}', r"Expected `object`, got `array` - at `\$.apps`"),
        (b'{"schema": 2, "platform": {"proxy": 1}}', r"at `\$.platform\[...\]`"),
        (b'{"schema": 2, "generated": 5}', r"Expected `str`, got `int` - at `\$.generated`"),
    ],
)
def test_bad_catalogue_is_a_clear_error(data: bytes, expected: str) -> None:
    with pytest.raises(CatalogError, match=expected) as caught:
        Catalog.from_bytes(data, ORIGIN)
    assert str(caught.value).startswith(ORIGIN) and "\n" not in str(caught.value)
    assert caught.value.fix


def test_the_last_schema_1_catalogue_is_refused() -> None:
    data = (DATA / "catalog-schema1.json").read_bytes()
    with pytest.raises(CatalogError, match=r"has schema 1, this Commonshelf reads schema 2"):
        Catalog.from_bytes(data, ORIGIN)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"schema": 2,\n not json}', r"^mirror/catalog\.json:2: invalid JSON"),
        (b'{"schema": 2, "schema": 2}', r"^mirror/catalog\.json:1: .*schema"),
        (b'{"schema": 2, "generated": NaN}', r"^mirror/catalog\.json:1: .*NaN"),
    ],
)
def test_unreadable_json_is_a_catalog_error_naming_the_file_and_line(
    data: bytes, expected: str
) -> None:
    # a CatalogError, so callers that tolerate a broken catalogue (lint) keep doing so
    with pytest.raises(CatalogError, match=expected) as caught:
        Catalog.from_bytes(data, ORIGIN)
    assert caught.value.fix and "\n" not in str(caught.value)


def _raw() -> dict[str, Any]:
    raw: dict[str, Any] = msgspec.to_builtins(_catalog())
    return raw


V = ("apps", "web", "versions", "1.0.0+1.22.1")
RUNTIME = (*V, "runtime")
VETTING = (*V, "vetting")


@pytest.mark.parametrize(
    ("where", "bad", "path"),
    [
        (("apps", "web", "title"), 1, "$.apps[...].title"),
        (("apps", "web", "versions"), [], "$.apps[...].versions"),
        ((*V, "commit"), None, "$.apps[...].versions[...].commit"),
        ((*RUNTIME, "compose"), 3, "$.apps[...].versions[...].runtime.compose"),
        ((*RUNTIME, "main", "port"), "8080", "$.apps[...].versions[...].runtime.main.port"),
        (
            (*RUNTIME, "services", "app", "image"),
            False,
            "$.apps[...].versions[...].runtime.services[...].image",
        ),
        ((*RUNTIME, "data", 0, "volume"), 7, "$.apps[...].versions[...].runtime.data[0].volume"),
        ((*RUNTIME, "backup", "pre"), "sync", "$.apps[...].versions[...].runtime.backup.pre"),
        (
            (*RUNTIME, "secrets", "db_password", "length"),
            "24",
            "$.apps[...].versions[...].runtime.secrets[...].length",
        ),
        (
            (*RUNTIME, "settings", "WORKERS", "default"),
            [2],
            "$.apps[...].versions[...].runtime.settings[...].default",
        ),
        (
            (*RUNTIME, "migration", "kind"),
            "automatic",
            "$.apps[...].versions[...].runtime.migration.kind",
        ),
        (
            (*RUNTIME, "resources", "memory_mb"),
            "1G",
            "$.apps[...].versions[...].runtime.resources.memory_mb",
        ),
        ((*VETTING, "level"), "7", "$.apps[...].versions[...].vetting.level"),
        (
            (*VETTING, "checks", "install", "status"),
            "ok",
            "$.apps[...].versions[...].vetting.checks[...].status",
        ),
        (
            (*VETTING, "upgrade", "probes"),
            1.5,
            "$.apps[...].versions[...].vetting.upgrade.probes",
        ),
        ((*VETTING, "tests", "passed"), "5", "$.apps[...].versions[...].vetting.tests.passed"),
        (
            (*VETTING, "scan", "counts", "CRITICAL"),
            "0",
            "$.apps[...].versions[...].vetting.scan.counts[...]",
        ),
        (("platform", "proxy", "digest"), 0, "$.platform[...].digest"),
    ],
)
def test_wrong_types_name_the_file_and_the_json_path(
    where: tuple[str | int, ...], bad: object, path: str
) -> None:
    raw = _raw()
    node: Any = raw
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = bad
    with pytest.raises(CatalogError) as caught:
        Catalog.from_bytes(json.dumps(raw).encode(), ORIGIN)
    message = str(caught.value)
    assert message.startswith(f"{ORIGIN}: ") and message.count(ORIGIN) == 1
    assert f" - at `{path}`." in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ((*RUNTIME, "main"), "$.apps[...].versions[...].runtime"),
        ((*V, "vetting"), "$.apps[...].versions[...]"),
        (("apps", "web", "category"), "$.apps[...]"),
    ],
)
def test_missing_required_fields_are_named(where: tuple[str, ...], path: str) -> None:
    raw = _raw()
    node: Any = raw
    for key in where[:-1]:
        node = node[key]
    del node[where[-1]]
    with pytest.raises(CatalogError, match=rf"missing required field `{where[-1]}`") as caught:
        Catalog.from_bytes(json.dumps(raw).encode(), ORIGIN)
    assert f"at `{path}`" in str(caught.value)


def test_a_valid_catalogue_survives_the_mutation_helpers() -> None:
    # the refusals above come from the one field changed, not from the fixture
    assert Catalog.from_bytes(json.dumps(copy.deepcopy(_raw())).encode()) == _catalog()


# ---- settings


@pytest.mark.parametrize(
    ("default", "text", "value"),
    [
        ("web", " any text ", " any text "),
        (2, "8", 8),
        (2, " 8 ", 8),
        (0.5, "1", 1.0),
        (0.5, "0.25", 0.25),
        (True, "false", False),
        (False, "YES", True),
        (False, "1", True),
        (True, "no", False),
        (True, "0", False),
    ],
)
def test_a_setting_parses_text_as_the_type_of_its_default(
    default: str | int | float | bool, text: str, value: object
) -> None:
    parsed = Setting(default=default, description="").parse("KEY", text)
    assert parsed == value and type(parsed) is type(default)


@pytest.mark.parametrize(
    ("default", "text", "kind"),
    [
        (2, "8.5", "whole number"),
        (2, "many", "whole number"),
        (0.5, "half", "number"),
        (True, "maybe", "true or false"),
    ],
)
def test_a_setting_of_the_wrong_type_says_what_fits(
    default: str | int | float | bool, text: str, kind: str
) -> None:
    with pytest.raises(CommonshelfError, match=rf"Setting KEY='{text}' is not a {kind}\.") as e:
        Setting(default=default, description="").parse("KEY", text)
    shown = ("true" if default else "false") if isinstance(default, bool) else str(default)
    assert f"like its default {shown}" in e.value.fix


def test_float_settings_accept_non_finite_text() -> None:
    # documents today's behaviour: float() takes 'nan' and 'inf'
    assert math.isnan(float(Setting(default=0.5, description="").parse("R", "nan")))


# ---- released versions, from any schema


def test_released_records_read_the_last_schema_1_catalogue() -> None:
    data = (DATA / "catalog-schema1.json").read_bytes()
    assert released_records(data, ORIGIN) == [
        ReleasedVersion(
            app="custom-html",
            version="1.0.0+1.22.1",
            commit="161c5c04996d3d25c8b4b308be2b2e56f96b3b1b",
            content_hash="0fd1bdcacc6ab3a27c5ceefc557ed774d81debcba3d2fb4c42683dd276aa0bf1",
            released="2026-11-25T00:39:31Z",
        ),
        ReleasedVersion(
            app="custom-html",
            version="1.1.0+1.22.1",
            commit="7ef443c784741d141ad8e7696bbe1b4417a60903",
            content_hash="5dae95b4cbb5103896a61d13dc37027dc39d71df5ff96af9c5d155b4b895daae",
            released="2026-11-25T00:41:22Z",
        ),
    ]


def test_released_records_read_schema_2_oldest_first_by_app() -> None:
    catalog = _catalog()
    catalog.add_version(
        "web",
        "Web",
        "A site",
        "website",
        "1.11.0+1",
        _entry("1.11.0+1", commit="d" * 40 + "-dirty"),
    )
    found = released_records(catalog.to_bytes(), ORIGIN)
    assert [(r.app, r.version) for r in found] == [
        ("blog", "0.1.0+1"),
        ("web", "1.0.0+1.22.1"),
        ("web", "1.2.0+1.22.1"),
        ("web", "1.10.0+1.24.0"),
        ("web", "1.11.0+1"),
    ]
    assert found[-1].commit == "d" * 40  # a dirty release names the commit it was based on
    assert {r.content_hash for r in found} == {"h" * 64}
    assert {r.released for r in found} == {"2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    "data", [b'{"schema": 2, "apps": {}}', b'{"schema": 2}', b"{}", b'{"schema": 1, "apps": {}}']
)
def test_released_records_of_an_empty_catalogue(data: bytes) -> None:
    assert released_records(data, ORIGIN) == []


def test_released_records_refuse_a_version_that_is_not_an_object() -> None:
    data = b'{"schema": 1, "apps": {"web": {"versions": {"1.0.0+1": "yes"}}}}'
    with pytest.raises(CatalogError, match=r"mirror/catalog\.json: apps\.web\.versions\.1\.0\.0"):
        released_records(data, ORIGIN)
