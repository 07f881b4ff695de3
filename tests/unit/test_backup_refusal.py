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
