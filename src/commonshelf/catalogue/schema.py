"""`shared/schemas/catalog.schema.json`, generated from the typed catalogue model.

The model in `catalogue.contract` is the one definition of what a catalogue holds;
the JSON Schema is derived from it (msgspec), so editors and other tools can
validate `catalog.json` without Commonshelf, and the two never drift apart (a test
compares them; `./shelf docs` rewrites the file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from commonshelf.catalogue.catalog import SCHEMA, Catalog
from commonshelf.platform.fsutil import write_text_atomic

SCHEMA_FILE = Path("shared") / "schemas" / "catalog.schema.json"


def catalog_schema() -> dict[str, Any]:
    schema: dict[str, Any] = msgspec.json.schema(Catalog)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"Commonshelf catalogue, schema {SCHEMA}"
    schema["description"] = (
        "catalog.json: released app versions, each with its runtime contract and what CI "
        "proved. Generated from src/commonshelf/catalogue/contract.py; do not edit."
    )
    return schema


def schema_text() -> str:
    return json.dumps(catalog_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(root: Path) -> bool:
    """Rewrite the schema file under `root`; whether it changed."""
    path = root / SCHEMA_FILE
    text = schema_text()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    write_text_atomic(path, text)
    return True
