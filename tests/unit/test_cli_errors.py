"""The CLI prints one line for a library error that escapes (docker, OS), never a traceback."""

from __future__ import annotations

from pathlib import Path

import docker.errors
import pytest

from commonshelf.installation import cli
from commonshelf.platform.errors import translate


def test_a_docker_api_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(argv: list[str] | None = None) -> int:
        raise docker.errors.APIError("500 Server Error", explanation="no space left on device")

    monkeypatch.setattr(cli, "run", refuse)
    assert cli.main(["status"]) == 2
    err = capsys.readouterr().err
    assert "no space left on device" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_an_os_error_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "config.json"
    try:
        missing.read_text()
    except OSError as exc:
        error = translate(exc)
    assert error is not None and str(missing) in str(error) and "\n" not in str(error)


def test_a_bug_is_not_hidden() -> None:
    assert translate(ZeroDivisionError("x")) is None
