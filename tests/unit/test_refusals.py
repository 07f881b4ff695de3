"""The operator's line for each way the repository can fail a read (`refusals.refusal`):
python-tuf's exceptions, as it raises them, turned into our words with the file and a fix.
The attacks themselves, over HTTP with real signatures: tests/integration/test_tuf_attacks.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Targets, Timestamp

from commonshelf.installation.refusals import METADATA, Endless, Read, refusal

URL = "http://127.0.0.1:8700"


def _read(
    tmp_path: Path, *, what: str = METADATA, asked: str = "", got: dict[str, bytes] | None = None
) -> Read:
    return Read(what, URL, 15, asked, got or {}, tmp_path)


def _says(exc: BaseException, read: Read) -> str:
    refused = refusal(exc, read)
    assert refused is not None and refused.fix
    line = str(refused)
    assert "\n" not in line and " Fix: " in line
    return line


@pytest.mark.parametrize(
    "text",
    [
        "New timestamp version 1 must be >= 2",
        "New snapshot version must be >= 2, got version 1",
        "Expected targets.json version 1, got 2.",  # python-tuf's numbers, the wrong way round
    ],
)
def test_a_rollback_is_called_one(tmp_path: Path, text: str) -> None:
    line = _says(tuf_errors.BadVersionNumberError(text), _read(tmp_path, asked="timestamp.json"))
    assert line.startswith(f"{METADATA} (timestamp.json) from {URL} goes back to metadata older")
    assert text not in line


def test_another_version_is_called_mix_and_match_and_says_which_it_is(tmp_path: Path) -> None:
    served = Metadata(Targets(version=1)).to_bytes()
    read = _read(tmp_path, asked="2.targets.json", got={"targets.json": served})
    line = _says(tuf_errors.BadVersionNumberError("Expected targets v2, got v1."), read)
    assert "(2.targets.json)" in line and "(it is version 1): a mix-and-match attack" in line


def test_a_root_below_threshold_is_not_told_to_re_run_init_blindly(tmp_path: Path) -> None:
    root = tuf_errors.UnsignedMetadataError("root was signed by 1/2 keys")
    line = _says(root, _read(tmp_path, asked="2.root.json"))
    assert "(2.root.json)" in line and "1 of the 2 root keys required signed it" in line
    assert "re-run init only with a root obtained out of band" in line
    other = tuf_errors.UnsignedMetadataError("timestamp was signed by 0/1 keys")
    assert "not signed by trusted keys (0 of the 1 timestamp keys" in _says(other, _read(tmp_path))


def test_sizes_and_endless_streams_name_the_limit(tmp_path: Path) -> None:
    big = tuf_errors.DownloadLengthMismatchError(
        "Downloaded 400000 bytes exceeding the maximum allowed length of 16384"
    )
    line = _says(big, _read(tmp_path, asked="timestamp.json"))
    assert "larger than allowed (over 16384 bytes" in line and "Downloaded" not in line
    dripped = _says(Endless("still sending"), _read(tmp_path, what="catalog.json", asked="x"))
    assert dripped.startswith(f"catalog.json from {URL} could not be fetched: the server was")
    assert "still sending it after 60 s" in dripped  # 4 timeouts of 15 s


def test_an_expiry_names_the_role_that_expired_not_the_last_file(tmp_path: Path) -> None:
    expires = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    (tmp_path / "timestamp.json").write_bytes(Metadata(Timestamp(expires=expires)).to_bytes())
    exc = tuf_errors.ExpiredMetadataError("timestamp.json is expired")
    line = _says(exc, _read(tmp_path, asked="2.root.json"))
    assert line.startswith(f"{METADATA} from {URL} is covered by signed metadata that has expired")
    assert "timestamp.json: it expired at 2026-01-02T03:04:05Z" in line


def test_anything_else_is_left_to_show(tmp_path: Path) -> None:
    assert refusal(ValueError("a bug"), _read(tmp_path)) is None
