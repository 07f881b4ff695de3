"""The vulnerability DB the production way: built, pushed to the real registry as trivy's
OCI artifact, and pulled by the real trivy (`--db-repository`), as scans do."""

from __future__ import annotations

import gzip
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest

from commonshelf.ci import image_scan, scan, vulndb
from commonshelf.ci.trivydb import Advisory
from commonshelf.platform.errors import ScanError
from commonshelf.platform.settings import Settings

CRITICAL = Advisory("nginx", "CVE-2099-0001", "99.0.0-1", "CRITICAL", "fixture: nginx RCE")
BUILT = datetime(2026, 11, 27, tzinfo=UTC)


def _repository(settings: Settings, name: str) -> str:
    return f"{settings.registry}/commonshelf/tests/trivy-db-{name}"


def _push(settings: Settings, tmp_path: Path, name: str, advisories: list[Advisory]) -> str:
    artifact = vulndb.build_artifact(advisories, BUILT, tmp_path / f"artifact-{name}")
    repository = _repository(settings, name)
    vulndb.push(artifact, repository)
    return repository


def _push_tarball(settings: Settings, tmp_path: Path, name: str, data: bytes) -> str:
    artifact = tmp_path / f"{name}.tar.gz"
    artifact.write_bytes(data)
    repository = _repository(settings, name)
    vulndb.push(artifact, repository)
    return repository


def test_the_bundled_db_is_published_once_and_pulled_by_trivy(
    settings: Settings, env: object, tmp_path: Path
) -> None:
    digest = vulndb.publish_bundled(settings)
    assert vulndb.publish_bundled(settings) == digest  # same advisories: nothing pushed again
    cache = tmp_path / "cache"
    source = vulndb.pull(cache, settings.vulndb_repository)
    assert source.digest == digest and source.has_advisories
    assert source.built.startswith("2026-")
    assert vulndb.pull(cache, settings.vulndb_repository).pulled == source.pulled  # kept
    db = scan.ensure_vuln_db(cache)
    assert db.digest == digest and db.origin == settings.vulndb_repository
    assert digest[:19] in db.describe()


def test_a_db_pulled_from_the_registry_finds_the_advisory_in_an_image(
    settings: Settings, recipe_image: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    repository = _push(settings, tmp_path, "critical", [CRITICAL])
    cache = tmp_path / "cache"
    vulndb.pull(cache, repository)
    db = scan.ensure_vuln_db(cache)
    scanned = image_scan.scan_image(
        recipe_image,
        docker_client.images.get(recipe_image).id,
        cache_dir=cache,
        db=db,
        store=tmp_path / "results",
    )
    [found] = [f for f in scanned.findings if f.package == "nginx-light"]
    assert (found.id, found.fixed, found.severity) == ("CVE-2099-0001", "99.0.0-1", "CRITICAL")
    assert found.installed.startswith("1.22.1")


def test_the_upstream_db_is_mirrored_with_one_command(settings: Settings, env: object) -> None:
    vulndb.publish_bundled(settings)
    target = _repository(settings, "mirror")
    vulndb.mirror(settings.vulndb_repository, target)
    source_layer = vulndb.remote_layer(settings.vulndb_repository)
    mirrored_layer = vulndb.remote_layer(target)
    assert source_layer and mirrored_layer and source_layer[1] == mirrored_layer[1]


def test_an_empty_db_is_refused_unless_allowed_and_then_says_so(
    settings: Settings, env: object, tmp_path: Path
) -> None:
    repository = _push(settings, tmp_path, "empty", [])
    with pytest.raises(ScanError, match=r"holds no advisories.*--allow-empty-db"):
        vulndb.pull(tmp_path / "strict", repository)
    source = vulndb.pull(tmp_path / "lax", repository, allow_empty=True)
    assert not source.has_advisories and "EMPTY" in source.describe()
    with pytest.raises(ScanError, match="holds no advisories"):
        scan.ensure_vuln_db(tmp_path / "lax")
    assert "EMPTY" in scan.ensure_vuln_db(tmp_path / "lax", allow_empty=True).describe()


def test_no_db_at_all_is_a_clear_failure(settings: Settings, env: object, tmp_path: Path) -> None:
    with pytest.raises(ScanError, match=r"No vulnerability DB at .*trivy-db-never-pushed:2"):
        vulndb.pull(tmp_path / "cache", _repository(settings, "never-pushed"))
    with pytest.raises(ScanError, match="No vulnerability DB in"):
        scan.ensure_vuln_db(tmp_path / "nothing-here")


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb") as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("not-gzip", b"this is not a tarball" * 10, "could not download"),
        (
            "garbage-db",
            _tarball({"trivy.db": b"garbage" * 2000, "metadata.json": b'{"Version": 2}'}),
            "is not a trivy DB|could not download",
        ),
    ],
)
def test_a_corrupt_db_artifact_is_a_clear_error(
    settings: Settings, env: object, tmp_path: Path, name: str, data: bytes, said: str
) -> None:
    repository = _push_tarball(settings, tmp_path, name, data)
    cache = tmp_path / "cache"
    with pytest.raises(ScanError, match=said) as caught:
        vulndb.pull(cache, repository)
    line = str(caught.value)
    assert "\n" not in line and repository in line and "Fix:" in line
    assert not (cache / "db").exists()  # nothing half-pulled is left for a scan to use


def test_a_mirror_serving_something_other_than_one_db_layer_is_refused_before_download(
    settings: Settings, env: object, tmp_path: Path
) -> None:
    import oras.client

    repository = _repository(settings, "two-layers")
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    first.write_bytes(_tarball({"trivy.db": b"x"}))
    second.write_bytes(_tarball({"metadata.json": b"{}"}))
    client = oras.client.OrasClient(hostname=settings.registry, insecure=True)
    client.push(
        target=f"{repository}:2",
        files=[f"{first}:{vulndb.LAYER_MEDIA_TYPE}", f"{second}:{vulndb.LAYER_MEDIA_TYPE}"],
        disable_path_validation=True,
    )
    with pytest.raises(ScanError, match=r"is not one DB layer under 1024 MiB \(2 layers"):
        vulndb.pull(tmp_path / "cache", repository)
    assert not (tmp_path / "cache" / "db").exists()
