"""Placement on a multi-node Swarm: services holding data (and the proxy) are pinned to the
node the agent drives, stateless services float, and an installation without a data node
(one engine, the CI matrix, installations made before the field existed) pins nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import yaml

from commonshelf.catalogue.contract import (
    BackupHooks,
    DataVolume,
    MainService,
    Runtime,
    ServiceImage,
)
from commonshelf.ci.contract_for import runtime_for
from commonshelf.installation.render import node_bound, pin_to_node, render_app, render_proxy
from commonshelf.installation.state import InstallationConfig
from commonshelf.recipes.model import load_recipe

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "b" * 64
PINNED = f"127.0.0.1:5000/commonshelf/web@{DIGEST}"
NODE = "pn0lbfs5y10ehikmanp55kc8y"
SPREAD = InstallationConfig(repository="r", namespace="t-", data_node=NODE)
SINGLE = InstallationConfig(repository="r", namespace="t-")
RULE = f"node.id == {NODE}"


def _runtime(**changes: Any) -> Runtime:
    fields: dict[str, Any] = {
        "compose": "apps/web/1.0.0+1/compose.yml",
        "services": {},
        "main": MainService(service="app", port=8080, health="/healthz"),
        **changes,
    }
    return Runtime(**fields)


def _constraints(spec: dict[str, Any]) -> list[str]:
    return list(spec.get("deploy", {}).get("placement", {}).get("constraints", []))


def test_a_real_recipe_pins_its_database_and_lets_the_app_float() -> None:
    recipe = load_recipe(ROOT / "recipes" / "ihatemoney")
    compose = yaml.safe_load((ROOT / "recipes" / "ihatemoney" / "compose.yml").read_text())
    runtime = runtime_for(
        recipe, {name: ServiceImage(image=PINNED, digest=DIGEST) for name in compose["services"]}
    )
    services = render_app(compose, runtime, SPREAD, "ihatemoney")["services"]
    assert _constraints(services["db"]) == [RULE]  # holds the `db` volume, runs the hooks
    assert _constraints(services["app"]) == []  # stateless: any node
    assert services["db"]["deploy"]["update_config"] == {
        "order": "stop-first",
        "failure_action": "rollback",
    }  # the recipe's own deploy settings stay
    single = render_app(compose, runtime, SINGLE, "ihatemoney")["services"]
    assert all("placement" not in spec["deploy"] for spec in single.values())


def test_every_way_of_holding_node_local_state_is_pinned() -> None:
    runtime = _runtime(
        data=(
            DataVolume(volume="files", service="app", path="/srv"),
            DataVolume(volume="db", service="db", path="/var/lib/db"),
        ),
        backup=BackupHooks(service="dumper", pre=("dump",)),
    )
    services: dict[str, Any] = {
        "app": {"volumes": [{"type": "volume", "source": "files", "target": "/srv"}]},
        "db": {"volumes": ["db:/var/lib/db"]},
        "reader": {"volumes": ["files:/srv:ro"]},  # another service reading a data volume
        "dumper": {},  # the backup hooks run here, through the agent's engine
        "chat": {"ports": [{"target": 5222, "published": 5222, "mode": "host"}]},
        "cache": {"volumes": ["scratch:/cache", "/etc/hosts:/etc/hosts:ro"]},  # not data
        "worker": {"volumes": [{"type": "bind", "source": "files", "target": "/x"}]},
        "web": {"ports": [{"target": 8080}]},  # not published: reached through the proxy
    }
    assert node_bound(services, runtime) == {"app", "db", "reader", "dumper", "chat"}


def test_the_recipes_own_constraints_are_kept_and_not_repeated() -> None:
    spec: dict[str, Any] = {
        "deploy": {"placement": {"constraints": ["node.platform.os == linux"], "preferences": []}}
    }
    pin_to_node(spec, NODE)
    pin_to_node(spec, NODE)
    assert spec["deploy"]["placement"] == {
        "constraints": ["node.platform.os == linux", RULE],
        "preferences": [],
    }
    empty: dict[str, Any] = {"deploy": {"placement": None}}
    pin_to_node(empty, NODE)
    assert empty["deploy"]["placement"] == {"constraints": [RULE]}


def test_the_proxy_runs_beside_its_routes_folder(tmp_path: Path) -> None:
    compose = yaml.safe_load((ROOT / "shared" / "proxy" / "compose.yml").read_text())
    proxy = render_proxy(compose, PINNED, SPREAD, tmp_path)["services"]["proxy"]
    assert _constraints(proxy) == ["node.role == manager", RULE]
    alone = render_proxy(compose, PINNED, SINGLE, tmp_path)["services"]["proxy"]
    assert _constraints(alone) == ["node.role == manager"]


def test_a_config_written_before_the_field_existed_pins_nothing() -> None:
    old = msgspec.json.decode(b'{"repository": "r", "http_port": 80}', type=InstallationConfig)
    assert old.data_node == ""
    again = msgspec.json.decode(msgspec.json.encode(SPREAD), type=InstallationConfig)
    assert again.data_node == NODE
