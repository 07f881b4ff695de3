"""How an installation renders stacks: pinned images only, dnsrr, main service on the proxy net."""

from __future__ import annotations

from pathlib import Path

import pytest

from commonshelf.installation.agent import AgentConfig, render_app, render_proxy
from commonshelf.platform.errors import DeployError

PINNED = "127.0.0.1:5000/commonshelf/web-app@sha256:" + "a" * 64
CONFIG = AgentConfig(repository="http://127.0.0.1:8700", http_port=8081, namespace="t-")


def _entry() -> dict[str, object]:
    return {"services": {"app": {"image": PINNED}}, "main": {"service": "app", "port": 8080}}


def test_render_app_pins_and_joins_the_proxy_network() -> None:
    compose = {"services": {"app": {"image": "x", "build": "."}, "db": {"image": PINNED}}}
    rendered = render_app(compose, _entry(), CONFIG)
    app, db = rendered["services"]["app"], rendered["services"]["db"]
    assert app["image"] == PINNED and "build" not in app
    assert app["networks"] == ["default", "commonshelf-apps"]
    assert "networks" not in db
    assert app["deploy"]["endpoint_mode"] == db["deploy"]["endpoint_mode"] == "dnsrr"
    assert rendered["networks"]["commonshelf-apps"] == {
        "external": True,
        "name": "t-commonshelf-apps",
    }
    assert compose["services"]["app"]["image"] == "x"  # the input is not modified


def test_render_app_refuses_unpinned_images() -> None:
    compose = {"services": {"app": {"image": "x"}, "db": {"image": "postgres:15"}}}
    with pytest.raises(DeployError, match=r"'postgres:15' is not pinned by digest"):
        render_app(compose, _entry(), CONFIG)


def test_render_proxy_uses_the_installation_port_and_routes(tmp_path: Path) -> None:
    compose = {
        "services": {"proxy": {"image": "p", "ports": [], "volumes": []}},
        "networks": {"apps": {"external": True, "name": "commonshelf-apps"}},
    }
    rendered = render_proxy(compose, PINNED, CONFIG, tmp_path)
    proxy = rendered["services"]["proxy"]
    assert proxy["ports"][0]["published"] == 8081 and proxy["ports"][0]["mode"] == "host"
    assert proxy["volumes"][0]["source"] == str(tmp_path)
    assert rendered["networks"]["apps"]["name"] == "t-commonshelf-apps"


def test_urls_and_names_follow_the_namespace() -> None:
    assert CONFIG.url("web") == "http://web.localhost:8081/"
    assert CONFIG.stack("web") == "t-web" and CONFIG.proxy_stack == "t-commonshelf"
    assert AgentConfig(repository="r").url("web") == "http://web.localhost/"


@pytest.mark.parametrize("command", ["status", "install", "apps", "update"])
def test_commands_before_init_say_how_to_start(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from commonshelf.installation.cli import main

    argv = ["--home", str(tmp_path), command] + (["web"] if command == "install" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "commonshelf init --repository URL --root ROOT.json" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_init_with_an_unreadable_root_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from commonshelf.installation.cli import main

    home = tmp_path / "home"
    argv = [
        "--home",
        str(home),
        "init",
        "--repository",
        "http://127.0.0.1:1",
        "--root",
        str(tmp_path / "missing.json"),
    ]
    assert main(argv) == 2
    assert "Cannot read the root metadata" in capsys.readouterr().err
    assert not home.exists()
