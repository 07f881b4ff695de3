"""A backup is restored only into the app it was made of: another app's data is refused before
anything on the engine is touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from commonshelf.catalogue.contract import MainService, Runtime
from commonshelf.installation.backup import MANIFEST, Backup, restore_volumes
from commonshelf.installation.state import write_record
from commonshelf.platform.errors import DeployError


class _Untouchable:
    """Stands in for the deployer: any use of it (the engine) fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the deployer's {name} was used")


def test_a_backup_of_another_app_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    folder.mkdir()
    backup = Backup(app="wiki", version="1.0.0+1", created="now", volumes={}, hooks=1)
    write_record(folder / MANIFEST, backup)
    runtime = Runtime(
        compose="apps/chat/1.0.0+1/compose.yml",
        services={},
        main=MainService(service="app", port=80, health="/"),
    )
    with pytest.raises(DeployError, match=r"holds the data of wiki, not of chat"):
        restore_volumes(cast(Any, _Untouchable()), "chat", {}, runtime, folder)


def _backup_with_one_volume(tmp_path: Path) -> Path:
    import tarfile

    from commonshelf.installation.backup import content_digest, file_sha256

    folder = tmp_path / "backup"
    folder.mkdir()
    page = tmp_path / "index.html"
    page.write_text("hello\n")
    with tarfile.open(folder / "content.tar", "w") as tar:
        tar.add(page, arcname="./index.html")
    write_record(
        folder / MANIFEST,
        Backup(
            app="site",
            version="1.0.0+1",
            created="now",
            volumes={"content": "content.tar"},
            hooks=0,
            sha256={"content.tar": file_sha256(folder / "content.tar")},
            content={"content": content_digest(folder / "content.tar")},
        ),
    )
    return folder


def test_a_backup_whose_checksum_fails_is_refused_before_any_change(tmp_path: Path) -> None:
    from commonshelf.installation.backup import of_app

    folder = _backup_with_one_volume(tmp_path)
    assert of_app(folder, "site").version == "1.0.0+1"  # intact: accepted
    with (folder / "content.tar").open("r+b") as tar:
        tar.seek(600)
        tar.write(b"X")  # one byte of the file's content flipped
    with pytest.raises(DeployError, match=r"content.tar does not match its checksum"):
        of_app(folder, "site")
    runtime = Runtime(
        compose="c.yml", services={}, main=MainService(service="app", port=80, health="/")
    )
    with pytest.raises(DeployError, match="does not match its checksum"):
        restore_volumes(cast(Any, _Untouchable()), "site", {}, runtime, folder)


def test_the_content_digest_ignores_times_but_not_bytes(tmp_path: Path) -> None:
    import os
    import tarfile

    from commonshelf.installation.backup import content_digest

    page = tmp_path / "index.html"
    page.write_text("hello\n")
    digests = []
    for n, (text, mtime) in enumerate((("hello\n", 1), ("hello\n", 2), ("hellO\n", 2))):
        page.write_text(text)
        os.utime(page, (mtime, mtime))
        archive = tmp_path / f"{n}.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(page, arcname="./index.html")
        digests.append(content_digest(archive))
    assert digests[0] == digests[1] != digests[2]
