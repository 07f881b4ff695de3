"""Compose fragments the harness translates for the Engine API."""

from __future__ import annotations

from pathlib import Path

import pytest

from commonshelf.platform.errors import CommonshelfError
from commonshelf.recipes.compose import (
    duration_ns,
    engine_healthcheck,
    named_volumes,
    service_environment,
)


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), (3, 3)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert duration_ns(text) == int(seconds * 1e9)


@pytest.mark.parametrize("text", ["5", "five seconds", "5x", ""])
def test_bad_durations_are_errors(text: str) -> None:
    with pytest.raises(CommonshelfError, match="is not a duration"):
        duration_ns(text)


def test_healthcheck_translation() -> None:
    spec = {
        "test": ["CMD", "http-health", "8080"],
        "interval": "5s",
        "timeout": "3s",
        "retries": 3,
        "start_period": "10s",
    }
    assert engine_healthcheck(spec) == {
        "test": ["CMD", "http-health", "8080"],
        "interval": 5_000_000_000,
        "timeout": 3_000_000_000,
        "retries": 3,
        "start_period": 10_000_000_000,
    }
    assert engine_healthcheck({"test": "curl -f localhost"})["test"] == [
        "CMD-SHELL",
        "curl -f localhost",
    ]


def test_named_volumes_short_and_long_syntax_skip_binds() -> None:
    spec = [
        "data:/srv",
        "./local:/x",
        "/host:/y:ro",
        "cache:/var/cache:rw",
        {"type": "volume", "source": "db", "target": "/var/lib/db"},
        {"type": "bind", "source": "/etc", "target": "/etc2"},
    ]
    assert named_volumes(spec) == [
        ("data", "/srv"),
        ("cache", "/var/cache"),
        ("db", "/var/lib/db"),
    ]


def test_environment_list_and_mapping() -> None:
    assert service_environment(["A=1", "B"]) == {"A": "1", "B": ""}
    assert service_environment({"A": 1, "B": None}) == {"A": "1", "B": ""}


def test_bind_mounts_are_absolute_host_paths_only() -> None:
    from commonshelf.recipes.compose import bind_mounts

    spec = [
        "data:/srv/data",
        "/var/run/docker.sock:/var/run/docker.sock",
        "/etc/hosts:/etc/hosts:ro",
        {"type": "bind", "source": "/srv", "target": "/mnt", "read_only": True},
        {"type": "volume", "source": "data", "target": "/x"},
    ]
    assert bind_mounts(spec) == [
        ("/var/run/docker.sock", "/var/run/docker.sock", "rw"),
        ("/etc/hosts", "/etc/hosts", "ro"),
        ("/srv", "/mnt", "ro"),
    ]


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ({}, ["default"]),
        ({"networks": ["front", "back"]}, ["front", "back"]),
        ({"networks": {"back": {"aliases": ["db"]}}}, ["back"]),
        ({"networks": []}, ["default"]),
    ],
)
def test_services_join_their_compose_networks(
    service: dict[str, object], expected: list[str]
) -> None:
    from commonshelf.recipes.compose import networks

    assert networks(service) == expected


@pytest.mark.parametrize("text", ["services: []\n", "version: '3.8'\n", "[]\n"])
def test_a_compose_file_without_services_is_refused(tmp_path: Path, text: str) -> None:
    from commonshelf.platform.errors import RecipeError
    from commonshelf.recipes.compose import load_compose

    path = tmp_path / "compose.yml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=r"compose\.yml: no 'services' mapping"):
        load_compose(path)


def test_a_compose_file_is_read_through_the_bounded_loader(tmp_path: Path) -> None:
    from commonshelf.platform.errors import RecipeError
    from commonshelf.recipes.compose import load_compose

    path = tmp_path / "compose.yml"
    path.write_text("services:\n  app: {image: x}\n  app: {image: y}\n")
    with pytest.raises(RecipeError, match=r"compose\.yml:3: key 'app' appears twice"):
        load_compose(path)
    path.write_text("services:\n  app: {image: x}\n")
    assert load_compose(path) == {"services": {"app": {"image": "x"}}}


def test_service_secrets_short_and_long_syntax() -> None:
    from commonshelf.recipes.compose import service_secrets

    assert service_secrets(["db_password", {"source": "key", "target": "signing.key"}]) == [
        ("db_password", "/run/secrets/db_password"),
        ("key", "/run/secrets/signing.key"),
    ]
    assert service_secrets({"not": "a list"}) == []
