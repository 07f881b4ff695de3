"""Each scan worker gets a trivy cache dir of its own, with a copy of the shared DB."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from commonshelf.ci import scan
from commonshelf.ci.trivydb import Advisory, write_trivy_db
from commonshelf.platform.errors import ScanError

CRITICAL = Advisory("zlib", "CVE-2099-0001", "1:9.9-1", "CRITICAL", "made up")


def test_each_worker_has_its_own_copy_of_the_shared_db(tmp_path: Path) -> None:
    shared = tmp_path / "trivy"
    write_trivy_db(shared, [CRITICAL])
    one, two = scan.worker_cache(shared, "vet_0"), scan.worker_cache(shared, "vet_1")
    assert one == tmp_path / "trivy-workers" / "vet_0" and two.name == "vet_1"
    for worker in (one, two):
        for name in ("trivy.db", "metadata.json"):
            copy, original = worker / "db" / name, shared / "db" / name
            assert copy.read_bytes() == original.read_bytes()
            assert copy.stat().st_ino != original.stat().st_ino  # a copy: a lock of its own
        assert scan.ensure_vuln_db(worker).advisories == 1
        assert [p.name for p in worker.iterdir()] == ["db"]  # no staging dir left behind


def test_copied_again_only_when_the_shared_metadata_changes(tmp_path: Path) -> None:
    shared = tmp_path / "trivy"
    write_trivy_db(shared)
    worker = scan.worker_cache(shared, "w")
    first = (worker / "db" / "trivy.db").stat().st_ino
    assert scan.worker_cache(shared, "w") == worker
    assert (worker / "db" / "trivy.db").stat().st_ino == first  # unchanged: not copied

    write_trivy_db(shared, [CRITICAL])  # the shared DB is replaced
    scan.worker_cache(shared, "w")
    assert (worker / "db" / "trivy.db").stat().st_ino != first
    assert (worker / "db" / "trivy.db").read_bytes() == (shared / "db" / "trivy.db").read_bytes()
    assert scan.ensure_vuln_db(worker).advisories == 1


def test_fanal_cache_stays_per_worker(tmp_path: Path) -> None:
    shared = tmp_path / "trivy"
    write_trivy_db(shared)
    (shared / "fanal").mkdir()
    (shared / "fanal" / "fanal.db").write_bytes(b"shared layers")
    worker = scan.worker_cache(shared, "w")
    assert not (worker / "fanal").exists()  # trivy makes the worker's own
    (worker / "fanal").mkdir()
    (worker / "fanal" / "fanal.db").write_bytes(b"worker layers")
    write_trivy_db(shared, [CRITICAL])
    scan.worker_cache(shared, "w")
    assert (worker / "fanal" / "fanal.db").read_bytes() == b"worker layers"


def test_no_shared_db_yet_is_an_error_not_an_empty_db(tmp_path: Path) -> None:
    shared = tmp_path / "trivy"
    with pytest.raises(ScanError, match=r"No vulnerability DB in .* Fix: pull it first"):
        scan.worker_cache(shared, "w")
    assert not (shared / "db").exists()
    write_trivy_db(shared)  # an empty one (what --allow-empty-db writes) is copied, and says so
    worker = scan.worker_cache(shared, "w")
    assert scan.ensure_vuln_db(worker, allow_empty=True).advisories == 0
    with pytest.raises(ScanError, match="holds no advisories"):
        scan.ensure_vuln_db(worker)


def test_an_interrupted_copy_leaves_the_previous_db_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "trivy"
    write_trivy_db(shared)
    worker = scan.worker_cache(shared, "w")
    before = (
        (worker / "db" / "trivy.db").read_bytes(),
        (worker / "db" / "metadata.json").read_text(),
    )
    write_trivy_db(shared, [CRITICAL])

    def half_copy(src: Path, dst: Path) -> None:
        Path(dst).write_bytes(Path(src).read_bytes()[:100])
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copyfile", half_copy)
    with pytest.raises(OSError, match="disk full"):
        scan.worker_cache(shared, "w")
    after = (worker / "db" / "trivy.db").read_bytes(), (worker / "db" / "metadata.json").read_text()
    assert after == before
    assert [p.name for p in worker.iterdir()] == ["db"]

    monkeypatch.undo()
    scan.worker_cache(shared, "w")
    assert scan.ensure_vuln_db(worker).advisories == 1


def test_a_db_replaced_during_the_copy_is_copied_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "trivy"
    write_trivy_db(shared)
    copy = shutil.copyfile
    calls: list[str] = []

    def copy_while_replaced(src: Path, dst: Path) -> Path:
        if not calls:
            write_trivy_db(shared, [CRITICAL])  # an update lands mid-copy
        calls.append(str(src))
        return Path(copy(src, dst))

    monkeypatch.setattr(shutil, "copyfile", copy_while_replaced)
    worker = scan.worker_cache(shared, "w")
    assert len(calls) == 2
    assert (worker / "db" / "trivy.db").read_bytes() == (shared / "db" / "trivy.db").read_bytes()
    assert scan.ensure_vuln_db(worker).advisories == 1


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../up", ".hidden", "two words"])
def test_worker_names_are_plain_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        scan.worker_cache(tmp_path / "trivy", name)


def test_scans_in_other_processes_take_other_cache_slots(tmp_path: Path) -> None:
    from commonshelf.ci.scan import claim_worker_slot

    shared = tmp_path / "trivy"
    first, held = claim_worker_slot(shared, "vet_0")
    second, also_held = claim_worker_slot(shared, "vet_0")  # another vet on this machine
    assert (first, second) == ("vet_0", "vet_0-1")
    held.close()  # that vet ended
    again, _ = claim_worker_slot(shared, "vet_0")
    assert again == "vet_0"
    also_held.close()
