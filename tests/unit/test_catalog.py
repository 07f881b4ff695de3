"""The catalogue model: newest version by semver, clear errors, stable bytes."""

from __future__ import annotations

import pytest

from commonshelf.catalogue.catalog import Catalog, CatalogError


def _catalog() -> Catalog:
    catalog = Catalog()
    for version in ("1.0.0+1.22.1", "1.10.0+1.24.0", "1.2.0+1.22.1"):
        catalog.add_version("web", {"title": "Web"}, version, {"compose": f"apps/web/{version}"})
    return catalog


def test_latest_is_by_semver_not_by_string() -> None:
    assert _catalog().latest("web") == "1.10.0+1.24.0"
    assert _catalog().version("web")[0] == "1.10.0+1.24.0"


def test_round_trip_is_byte_stable() -> None:
    data = _catalog().to_bytes()
    assert Catalog.from_bytes(data).to_bytes() == data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"{not json", "is not JSON"),
        (b'{"schema": 99, "apps": {}}', "schema 99"),
        (b'{"schema": 1, "apps": []}', "must be objects"),
    ],
)
def test_bad_catalogue_is_a_clear_error(data: bytes, expected: str) -> None:
    with pytest.raises(CatalogError, match=expected):
        Catalog.from_bytes(data)


def test_unknown_app_and_version_name_the_choices() -> None:
    with pytest.raises(CatalogError, match=r"apps: web"):
        _catalog().version("nope")
    with pytest.raises(CatalogError, match=r"published: 1\.0\.0\+1\.22\.1, 1\.2\.0"):
        _catalog().version("web", "3.0.0+1")
