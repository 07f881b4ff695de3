"""The bbolt writer: read the file back with a small independent reader."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from commonshelf.ci.trivydb import (
    PAGE_SIZE,
    WRITER_MARK,
    Advisory,
    _fnv1a64,
    has_advisories,
    write_trivy_db,
)


def _read_bucket(data: bytes, page_id: int) -> dict[bytes, object]:
    base = page_id * PAGE_SIZE
    _, flags, count, _overflow = struct.unpack_from("<QHHI", data, base)
    assert flags == 0x02
    out: dict[bytes, object] = {}
    for i in range(count):
        at = base + 16 + 16 * i
        eflags, pos, ksize, vsize = struct.unpack_from("<IIII", data, at)
        key = data[at + pos : at + pos + ksize]
        value = data[at + pos + ksize : at + pos + ksize + vsize]
        out[key] = _read_bucket(data, struct.unpack_from("<Q", value)[0]) if eflags & 1 else value
    assert list(out) == sorted(out)
    return out


def test_meta_pages_are_valid(tmp_path: Path) -> None:
    data = write_trivy_db(tmp_path).read_bytes()
    assert len(data) % PAGE_SIZE == 0
    for page in (0, 1):
        meta = data[page * PAGE_SIZE + 16 : page * PAGE_SIZE + 16 + 56]
        magic, version, page_size = struct.unpack_from("<III", meta)
        assert (magic, version, page_size) == (0xED0CDAED, 2, PAGE_SIZE)
        checksum = struct.unpack_from("<Q", data, page * PAGE_SIZE + 16 + 56)[0]
        assert checksum == _fnv1a64(meta)
    high_water = struct.unpack_from("<Q", data, 16 + 40)[0]
    assert high_water * PAGE_SIZE == len(data)
    metadata = json.loads((tmp_path / "db" / "metadata.json").read_text())
    assert metadata["Version"] == 2


def test_advisories_round_trip_including_overflow_pages(tmp_path: Path) -> None:
    advisories = [
        Advisory(f"pkg{i % 7}", f"CVE-2099-{i:04d}", "9.9", "HIGH", "x" * 100) for i in range(300)
    ]  # the vulnerability bucket spans several pages
    data = write_trivy_db(tmp_path, advisories).read_bytes()
    root_page = struct.unpack_from("<Q", data, 16 + 16)[0]
    root = _read_bucket(data, root_page)
    assert set(root) == {b"debian 12", b"vulnerability", b"data-source"}
    debian = root[b"debian 12"]
    assert isinstance(debian, dict) and len(debian) == 7
    pkg0 = debian[b"pkg0"]
    assert isinstance(pkg0, dict)
    assert json.loads(pkg0[b"CVE-2099-0000"]) == {"FixedVersion": "9.9"}
    vulns = root[b"vulnerability"]
    assert isinstance(vulns, dict) and len(vulns) == 300
    assert json.loads(vulns[b"CVE-2099-0299"])["Severity"] == "HIGH"
    metadata = json.loads((tmp_path / "db" / "metadata.json").read_text())
    assert metadata[WRITER_MARK] == 300  # scan reads how many advisories the DB holds


def test_the_data_source_names_no_url(tmp_path: Path) -> None:
    data = write_trivy_db(tmp_path, platform="debian 12").read_bytes()
    root = _read_bucket(data, struct.unpack_from("<Q", data, 16 + 16)[0])
    sources = root[b"data-source"]
    assert isinstance(sources, dict) and set(sources) == {b"debian 12"}
    source = sources[b"debian 12"]
    assert isinstance(source, bytes)
    assert json.loads(source) == {"ID": "debian", "Name": "Debian Security Tracker"}


def test_unknown_severity_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown severity"):
        write_trivy_db(tmp_path, [Advisory("p", "CVE-1", "1", "SEVERE")])


def test_the_reader_tells_an_empty_db_from_one_with_advisories(tmp_path: Path) -> None:
    assert not has_advisories(write_trivy_db(tmp_path / "empty"))
    one = [Advisory("nginx", "CVE-2099-0001", "99.0.0-1", "HIGH")]
    assert has_advisories(write_trivy_db(tmp_path / "one", one))
    many = [Advisory("p", f"CVE-2099-{i:04d}", "1", "LOW") for i in range(2000)]
    assert has_advisories(write_trivy_db(tmp_path / "many", many))  # overflow pages


@pytest.mark.parametrize("garbage", [b"", b"not a bbolt file" * 300, b"\0" * 8192])
def test_the_reader_refuses_what_is_not_a_bbolt_file(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "trivy.db"
    path.write_bytes(garbage)
    with pytest.raises(ValueError):
        has_advisories(path)


def test_the_same_advisories_and_build_time_give_the_same_bytes(tmp_path: Path) -> None:
    built = datetime(2026, 11, 27, tzinfo=UTC)
    one = [Advisory("nginx", "CVE-2099-0001", "99.0.0-1", "HIGH")]
    first = write_trivy_db(tmp_path / "a", one, built=built)
    second = write_trivy_db(tmp_path / "b", one, built=built)
    assert first.read_bytes() == second.read_bytes()
    assert (first.parent / "metadata.json").read_bytes() == (
        second.parent / "metadata.json"
    ).read_bytes()
