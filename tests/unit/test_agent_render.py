"""How an installation renders stacks: pinned images only, dnsrr, the main service on the
proxy's network, settings filled into `${KEY}`, secrets as external Swarm secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from commonshelf.catalogue.contract import MainService, Runtime, SecretSpec, ServiceImage, Setting
from commonshelf.installation.render import APPS_NETWORK, render_app, render_proxy, secret_name
from commonshelf.installation.state import InstallationConfig, Installed
from commonshelf.platform.errors import DeployError

DIGEST = "sha256:" + "a" * 64
PINNED = f"127.0.0.1:5000/commonshelf/web-app@{DIGEST}"
CONFIG = InstallationConfig(repository="http://127.0.0.1:8700", http_port=8081, namespace="t-")


def _runtime(**changes: Any) -> Runtime:
    fields: dict[str, Any] = {
        "compose": "apps/web/1.0.0+1/compose.yml",
        "services": {"app": ServiceImage(image=PINNED, digest=DIGEST)},
        "main": MainService(service="app", port=8080, health="/healthz"),
        **changes,
    }
    return Runtime(**fields)


def test_render_app_pins_and_joins_the_proxy_network() -> None:
    compose = {"services": {"app": {"image": "x", "build": "."}, "db": {"image": PINNED}}}
    rendered = render_app(compose, _runtime(), CONFIG, "web")
    app, db = rendered["services"]["app"], rendered["services"]["db"]
    assert app["image"] == PINNED and "build" not in app
    assert app["networks"] == ["default", APPS_NETWORK]
    assert "networks" not in db
    assert app["deploy"]["endpoint_mode"] == db["deploy"]["endpoint_mode"] == "dnsrr"
    assert rendered["networks"][APPS_NETWORK] == {"external": True, "name": "t-commonshelf-apps"}
    assert "secrets" not in rendered  # the runtime declares none
    assert compose["services"]["app"] == {"image": "x", "build": "."}  # the input is unchanged


def test_a_main_service_with_named_networks_keeps_them() -> None:
    compose = {"services": {"app": {"image": "x", "networks": {"back": {"aliases": ["web"]}}}}}
    app = render_app(compose, _runtime(), CONFIG, "web")["services"]["app"]
    assert app["networks"] == {"back": {"aliases": ["web"]}, APPS_NETWORK: None}


def test_render_app_refuses_unpinned_images_in_one_line() -> None:
    compose = {"services": {"app": {"image": "x"}, "db": {"image": "postgres:15"}}}
    with pytest.raises(DeployError, match=r"'postgres:15' is not pinned by digest") as caught:
        render_app(compose, _runtime(), CONFIG, "web")
    assert "\n" not in str(caught.value) and caught.value.fix


@pytest.mark.parametrize(
    "image", ["127.0.0.1:5000/commonshelf/web-app:1.0", "reg/web-app@sha256:abc", "web-app"]
)
def test_a_contract_with_an_unpinned_image_is_refused_in_one_line(image: str) -> None:
    runtime = _runtime(services={"app": ServiceImage(image=image, digest="")})
    with pytest.raises(
        DeployError, match=r"service 'app': image .* is not pinned by digest"
    ) as caught:
        render_app({"services": {"app": {"image": PINNED}}}, runtime, CONFIG, "web")
    assert "\n" not in str(caught.value) and "invoke release" in str(caught.value)


def test_a_missing_main_service_is_a_deploy_error() -> None:
    runtime = _runtime(main=MainService(service="web", port=80, health="/"))
    with pytest.raises(DeployError, match=r"no main service 'web'"):
        render_app({"services": {"app": {"image": PINNED}}}, runtime, CONFIG, "web")


def test_settings_fill_environment_references() -> None:
    runtime = _runtime(
        settings={
            "SITE_NAME": Setting(default="My site", description="shown in the title"),
            "WORKERS": Setting(default=2, description="worker processes"),
        }
    )
    compose: dict[str, Any] = {
        "services": {
            "app": {
                "image": "x",
                "environment": {
                    "TITLE": "${SITE_NAME} (${WORKERS} workers)",
                    "OTHER": "${NOT_A_SETTING}",
                    "PORT": 8080,
                    "EMPTY": None,
                },
            },
            "worker": {"image": PINNED, "environment": ["WORKERS=${WORKERS}", "PLAIN=1"]},
        }
    }
    defaults = render_app(compose, runtime, CONFIG, "web")
    assert defaults["services"]["app"]["environment"] == {
        "TITLE": "My site (2 workers)",
        "OTHER": "$${NOT_A_SETTING}",  # anything else stays literal: docker must not fill it
        "PORT": 8080,
        "EMPTY": None,
    }
    assert defaults["services"]["worker"]["environment"] == ["WORKERS=2", "PLAIN=1"]
    chosen = render_app(compose, runtime, CONFIG, "web", {"WORKERS": "8"})
    assert chosen["services"]["app"]["environment"]["TITLE"] == "My site (8 workers)"
    assert chosen["services"]["worker"]["environment"][0] == "WORKERS=8"
    assert compose["services"]["worker"]["environment"][0] == "WORKERS=${WORKERS}"


def test_contract_secrets_become_external_swarm_secrets_of_the_stack() -> None:
    runtime = _runtime(
        secrets={
            "db_password": SecretSpec(description="database"),
            "admin_token": SecretSpec(description="admin API", length=64),
        }
    )
    compose: dict[str, Any] = {
        "services": {"app": {"image": "x", "secrets": ["db_password"]}},
        "secrets": {"db_password": {"file": "./dev-only"}},
    }
    rendered = render_app(compose, runtime, CONFIG, "web")
    assert secret_name("t-web", "db_password") == "t-web_db_password"
    assert rendered["secrets"] == {
        "db_password": {"external": True, "name": "t-web_db_password"},
        "admin_token": {"external": True, "name": "t-web_admin_token"},
    }
    assert rendered["services"]["app"]["secrets"] == ["db_password"]
    assert compose["secrets"] == {"db_password": {"file": "./dev-only"}}


def test_render_proxy_uses_the_installation_port_and_routes(tmp_path: Path) -> None:
    compose: dict[str, Any] = {
        "services": {"proxy": {"image": "p", "ports": [], "volumes": []}},
        "networks": {"apps": {"external": True, "name": "commonshelf-apps"}},
    }
    rendered = render_proxy(compose, PINNED, CONFIG, tmp_path)
    proxy = rendered["services"]["proxy"]
    assert proxy["image"] == PINNED
    assert proxy["ports"][0]["published"] == 8081 and proxy["ports"][0]["mode"] == "host"
    assert proxy["volumes"][0]["source"] == str(tmp_path) and proxy["volumes"][0]["read_only"]
    assert rendered["networks"]["apps"]["name"] == "t-commonshelf-apps"
    assert compose["networks"]["apps"]["name"] == "commonshelf-apps"
    with pytest.raises(DeployError, match=r"proxy: image 'nginx:1' is not pinned by digest"):
        render_proxy(compose, "nginx:1", CONFIG, tmp_path)


def test_urls_and_names_follow_the_namespace() -> None:
    assert CONFIG.url("web") == "http://web.localhost:8081/"
    assert CONFIG.stack("web") == "t-web" and CONFIG.proxy_stack == "t-commonshelf"
    assert CONFIG.network == "t-commonshelf-apps" and CONFIG.hostname("web") == "web.localhost"
    plain = InstallationConfig(repository="r")
    assert plain.url("web") == "http://web.localhost/" and plain.network == "commonshelf-apps"


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


def test_a_broken_config_record_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from commonshelf.installation.cli import main

    (tmp_path / "config.json").write_text('{"repository": "r", "http_port": "eighty"}')
    assert main(["--home", str(tmp_path), "status"]) == 2
    err = capsys.readouterr().err
    assert "config.json" in err and "$.http_port" in err and "Traceback" not in err


def test_install_json_prints_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from commonshelf.installation import agent, cli

    record = Installed(
        app="web",
        version="1.0.0+1",
        stack="web",
        url="http://web.localhost/",
        images={"app": PINNED},
        main_service="app",
        main_port=8080,
        installed_at="2026-01-01T00:00:00Z",
    )
    monkeypatch.setattr(
        agent.Agent, "install", lambda self, app, version, settings=None: (record, True)
    )
    assert cli.main(["--home", str(tmp_path), "--json", "install", "web"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["app"] == "web" and shown["changed"] is True


def test_published_ports_go_to_the_installations_host_ports() -> None:
    compose = {
        "services": {
            "app": {
                "image": "x",
                "ports": [
                    {"target": 5222, "published": 5222, "protocol": "tcp", "mode": "host"},
                    "22000:22000/udp",
                ],
            }
        }
    }
    moved = InstallationConfig(repository="r", namespace="t-", host_ports={5222: 15222})
    app = render_app(compose, _runtime(), moved, "chat")["services"]["app"]
    assert app["ports"] == [
        {"target": 5222, "published": 15222, "protocol": "tcp", "mode": "host"},
        {"target": 22000, "published": 22000, "protocol": "udp", "mode": "host"},
    ]
