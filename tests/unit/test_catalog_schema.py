"""catalog.json follows shared/schemas/catalog.schema.json, which the typed model generates."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from commonshelf.catalogue.catalog import Catalog, CatalogError
from commonshelf.catalogue.schema import SCHEMA_FILE, schema_text

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_schema_is_the_generated_one() -> None:
    committed = (REPO / SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == schema_text(), "run `./shelf docs` to regenerate the catalogue schema"


def _committed_catalog() -> dict[str, object]:
    data: dict[str, object] = json.loads((REPO / "catalog.json").read_text(encoding="utf-8"))
    return data


def test_the_committed_catalog_validates_against_its_schema() -> None:
    catalog = _committed_catalog()
    if catalog.get("schema") != 2:
        pytest.skip("catalog.json predates schema 2 (released before the runtime contract)")
    schema = json.loads((REPO / SCHEMA_FILE).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(catalog)
    # and the model reads it back byte for byte (the release writes canonical JSON)
    data = (REPO / "catalog.json").read_bytes()
    assert Catalog.from_bytes(data).to_bytes() == data


def test_a_wrong_type_deep_in_the_contract_is_named_by_its_path() -> None:
    catalog = _committed_catalog()
    if catalog.get("schema") != 2:
        pytest.skip("catalog.json predates schema 2")
    apps = catalog["apps"]
    assert isinstance(apps, dict)
    version = next(iter(apps["custom-html"]["versions"].values()))
    version["runtime"]["main"]["port"] = "8080"
    with pytest.raises(CatalogError) as refused:
        Catalog.from_bytes(json.dumps(catalog).encode(), "mirror/catalog.json")
    message = str(refused.value)
    assert message.startswith("mirror/catalog.json: Expected `int`, got `str`")
    assert ".runtime.main.port" in message and "\n" not in message
