"""A minimal writer of trivy's vulnerability database (a bbolt file), in pure Python.

The real trivy DB is an OCI artifact on a container registry, which nothing
here may reach. This writes a valid DB with the advisories it is given: none
for the pipeline's offline scans (reported honestly as such), or fixture
advisories for tests that prove the scan gate fails on a CRITICAL finding.

bbolt layout written: pages 0 and 1 are meta pages (checksum FNV-1a 64 over
the meta's first 56 bytes), page 2 an empty freelist, then one leaf page per
bucket (a leaf that outgrows a page uses bbolt's overflow pages). Keys in a
leaf are sorted bytewise, as bbolt's binary search expects. Debian advisories
are keyed by *source* package: bucket "debian 12" → package → CVE id →
{"FixedVersion": …}; bucket "vulnerability" holds each CVE's severity and
title; bucket "data-source" names the source of "debian 12".
"""

from __future__ import annotations

import json
import mmap
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Union

from commonshelf.platform.fsutil import write_bytes_atomic

PAGE_SIZE = 4096
MAGIC = 0xED0CDAED
VERSION = 2
BRANCH, LEAF, META, FREELIST = 0x01, 0x02, 0x04, 0x10
BUCKET_LEAF_FLAG = 0x01
PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
LEAF_ELEMENT = struct.Struct("<IIII")  # flags, pos, ksize, vsize
IN_BUCKET = struct.Struct("<QQ")  # root page id, sequence
META_BODY = struct.Struct("<IIII QQ QQQ")  # magic, version, page size, flags, root, freelist...
SEVERITY_LEVELS = {"UNKNOWN": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
DB_SCHEMA_VERSION = 2
WRITER_MARK = "CommonshelfAdvisories"

# A bucket is a mapping of key -> value bytes or nested bucket.
Bucket = dict[bytes, Union[bytes, "Bucket"]]


@dataclass(frozen=True)
class Advisory:
    source_package: str
    vulnerability_id: str
    fixed_version: str
    severity: str
    title: str = ""


def _fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value ^= byte
        value = (value * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


class _Writer:
    """Lays buckets out as leaf pages, allocating page ids as it goes."""

    def __init__(self) -> None:
        self.pages: dict[int, bytes] = {}
        self.next_id = 3  # 0, 1: meta; 2: freelist

    def bucket(self, contents: Bucket) -> int:
        """Write a bucket (children first) and return its leaf page id."""
        items: list[tuple[int, bytes, bytes]] = []
        for key in sorted(contents):
            value = contents[key]
            if isinstance(value, dict):
                items.append((BUCKET_LEAF_FLAG, key, IN_BUCKET.pack(self.bucket(value), 0)))
            else:
                items.append((0, key, value))
        body = bytearray()
        data_start = PAGE_HEADER.size + LEAF_ELEMENT.size * len(items)
        offset = data_start
        elements = bytearray()
        for index, (flags, key, value) in enumerate(items):
            element_at = PAGE_HEADER.size + LEAF_ELEMENT.size * index
            elements += LEAF_ELEMENT.pack(flags, offset - element_at, len(key), len(value))
            body += key + value
            offset += len(key) + len(value)
        size = data_start + len(body)
        span = max(1, -(-size // PAGE_SIZE))
        page_id = self.next_id
        self.next_id += span
        header = PAGE_HEADER.pack(page_id, LEAF, len(items), span - 1)
        self.pages[page_id] = (header + bytes(elements) + bytes(body)).ljust(
            span * PAGE_SIZE, b"\0"
        )
        return page_id

    def file(self, root: Bucket) -> bytes:
        root_page = self.bucket(root)
        out = bytearray()
        for txid in (0, 1):
            meta = META_BODY.pack(MAGIC, VERSION, PAGE_SIZE, 0, root_page, 0, 2, self.next_id, txid)
            page = PAGE_HEADER.pack(txid, META, 0, 0) + meta + struct.pack("<Q", _fnv1a64(meta))
            out += page.ljust(PAGE_SIZE, b"\0")
        out += PAGE_HEADER.pack(2, FREELIST, 0, 0).ljust(PAGE_SIZE, b"\0")
        for page_id in sorted(self.pages):
            out += self.pages[page_id]
        return bytes(out)


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def build_buckets(advisories: Iterable[Advisory], platform: str = "debian 12") -> Bucket:
    packages: dict[bytes, Bucket] = {}  # source package -> CVE id -> fixed version
    vulnerabilities: Bucket = {}
    source = platform.split()[0]
    for adv in advisories:
        severity = adv.severity.upper()
        if severity not in SEVERITY_LEVELS:
            raise ValueError(f"unknown severity {adv.severity!r}")
        package = packages.setdefault(adv.source_package.encode(), {})
        package[adv.vulnerability_id.encode()] = _json({"FixedVersion": adv.fixed_version})
        vulnerabilities[adv.vulnerability_id.encode()] = _json(
            {
                "Title": adv.title or adv.vulnerability_id,
                "Description": adv.title or adv.vulnerability_id,
                "Severity": severity,
                "VendorSeverity": {source: SEVERITY_LEVELS[severity]},
            }
        )
    by_package: Bucket = dict(packages)
    return {
        platform.encode(): by_package,
        b"vulnerability": vulnerabilities,
        b"data-source": {
            platform.encode(): _json(
                {
                    "ID": source,
                    "Name": "Debian Security Tracker",  # no URL: nothing is fetched from it
                }
            )
        },
    }


def write_trivy_db(
    cache_dir: Path,
    advisories: Iterable[Advisory] = (),
    *,
    platform: str = "debian 12",
    built: datetime | None = None,
) -> Path:
    """Write `cache_dir/db/trivy.db` and `metadata.json` (atomically); return the DB path.
    `built` (default: now) is the DB's UpdatedAt: the same advisories and time give the
    same bytes, so a rebuilt DB artifact keeps its digest."""
    db_dir = cache_dir / "db"
    advisories = list(advisories)
    data = _Writer().file(build_buckets(advisories, platform))
    now = built or datetime.now(UTC)
    metadata = {
        "Version": DB_SCHEMA_VERSION,
        "NextUpdate": (now + timedelta(days=3650)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "UpdatedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "DownloadedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        WRITER_MARK: len(advisories),  # ignored by trivy; tells scan how many advisories exist
    }
    write_bytes_atomic(db_dir / "trivy.db", data)
    write_bytes_atomic(db_dir / "metadata.json", json.dumps(metadata).encode())
    return db_dir / "trivy.db"


def _page(data: memoryview, page_size: int, pgid: int) -> tuple[int, int, int]:
    """(flags, count, byte offset) of page `pgid`; ValueError when it lies outside the file."""
    offset = pgid * page_size
    if pgid < 2 or offset + PAGE_HEADER.size > len(data):
        raise ValueError(f"page {pgid} is outside the file")
    _, flags, count, _ = PAGE_HEADER.unpack_from(data, offset)
    return flags, count, offset


def _has_items(data: memoryview, page_size: int, pgid: int, depth: int = 0) -> bool:
    """Whether the B+tree rooted at `pgid` holds at least one key."""
    if depth > 32:
        raise ValueError("the tree is deeper than any bbolt file")
    flags, count, offset = _page(data, page_size, pgid)
    if flags & LEAF:
        return count > 0
    if flags & BRANCH and count:
        child = struct.unpack_from("<IIQ", data, offset + PAGE_HEADER.size)[2]
        return _has_items(data, page_size, child, depth + 1)
    return False


def _lookup(
    data: memoryview, page_size: int, pgid: int, key: bytes, depth: int = 0
) -> bytes | None:
    """The value of `key` in the B+tree rooted at `pgid` (bucket values are IN_BUCKET)."""
    if depth > 32:
        raise ValueError("the tree is deeper than any bbolt file")
    flags, count, offset = _page(data, page_size, pgid)
    base = offset + PAGE_HEADER.size
    if flags & LEAF:
        for index in range(count):
            at = base + LEAF_ELEMENT.size * index
            _, pos, ksize, vsize = LEAF_ELEMENT.unpack_from(data, at)
            if bytes(data[at + pos : at + pos + ksize]) == key:
                return bytes(data[at + pos + ksize : at + pos + ksize + vsize])
        return None
    children = []
    for index in range(count):
        at = base + 16 * index
        pos, ksize, child = struct.unpack_from("<IIQ", data, at)
        children.append((bytes(data[at + pos : at + pos + ksize]), child))
    chosen = [child for first, child in children if first <= key]
    return _lookup(data, page_size, chosen[-1], key, depth + 1) if chosen else None


def _meta(data: memoryview, offset: int) -> tuple[int, int, int] | None:
    """(page size, root pgid, txid) of the meta page at `offset`, None when it is not valid."""
    if offset + PAGE_HEADER.size + META_BODY.size + 8 > len(data):
        return None
    body = bytes(data[offset + PAGE_HEADER.size : offset + PAGE_HEADER.size + META_BODY.size])
    fields = META_BODY.unpack(body)
    (checksum,) = struct.unpack_from("<Q", data, offset + PAGE_HEADER.size + META_BODY.size)
    if fields[0] != MAGIC or checksum != _fnv1a64(body):
        return None
    return fields[2], fields[4], fields[8]


def has_advisories(db_path: Path) -> bool:
    """Whether a trivy DB (ours or upstream's) holds any advisory: its `vulnerability` bucket
    has a key. ValueError when the file is not a bbolt DB this reader understands."""
    with db_path.open("rb") as handle:
        if handle.seek(0, 2) < 2 * PAGE_HEADER.size:
            raise ValueError(f"{db_path.name} is too short for a bbolt file")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            data = memoryview(mapped)
            try:
                return _vulnerability_bucket_has_items(data)
            finally:
                data.release()


def _vulnerability_bucket_has_items(data: memoryview) -> bool:
    first = _meta(data, 0)
    second = _meta(data, first[0]) if first else None
    valid = [meta for meta in (first, second) if meta is not None]
    if not valid:
        raise ValueError("no valid bbolt meta page")
    page_size, root, _ = max(valid, key=lambda meta: meta[2])
    value = _lookup(data, page_size, root, b"vulnerability")
    if value is None or len(value) < IN_BUCKET.size:
        return False
    bucket_root, _ = IN_BUCKET.unpack_from(value)
    if bucket_root == 0:  # an inline bucket: its leaf page follows the bucket header
        inline = value[IN_BUCKET.size :]
        return len(inline) >= PAGE_HEADER.size and PAGE_HEADER.unpack_from(inline)[2] > 0
    return _has_items(data, page_size, bucket_root)
