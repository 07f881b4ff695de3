"""Turn a version's compose file and its contract into the stack an installation deploys.

The agent and the standard matrix both render through here, so CI runs exactly
what installations run: images pinned by digest, `dnsrr` endpoints (no IPVS
needed), the main service on the proxy's overlay network, secrets as external
Swarm secrets owned by the app's stack, settings filled into `${KEY}` references, and
on a multi-node Swarm the services that hold data pinned to the agent's own node.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from commonshelf.catalogue.contract import Runtime, is_pinned
from commonshelf.installation.state import InstallationConfig
from commonshelf.platform.compose_syntax import published_port
from commonshelf.platform.errors import DeployError

PROXY = "proxy"
APPS_NETWORK = "commonshelf-apps"
_REFERENCE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def secret_name(stack: str, secret: str) -> str:
    """The Swarm secret that holds an app's generated secret."""
    return f"{stack}_{secret}"


def setting_values(runtime: Runtime, chosen: dict[str, str] | None = None) -> dict[str, str]:
    """Every setting of the version as text: the operator's choice, else the default."""
    values = {name: spec.text() for name, spec in runtime.settings.items()}
    values.update(chosen or {})
    return values


def fill_settings(value: Any, settings: dict[str, str]) -> Any:
    """`${KEY}` references in a compose value replaced by the settings' values."""
    if not isinstance(value, str):
        return value
    return _REFERENCE.sub(lambda m: settings.get(m.group(1), m.group(0)), value)


def _escape_dollars(value: Any) -> Any:
    """Every `$` left after the settings are filled written as `$$`: `docker stack deploy`
    interpolates `${VAR}` from the environment of whoever runs it (the agent, a CI job),
    which must never leak into an app, so the rendered file says exactly what runs."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {key: _escape_dollars(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escape_dollars(item) for item in value]
    return value


def _host_port(item: Any, host_ports: dict[int, int]) -> Any:
    """A published port in long syntax, on the host port this installation uses for it."""
    published = published_port(item)
    if published is None:
        return item
    port, protocol = published
    if isinstance(item, dict):
        target = int(item.get("target", port))
    else:
        target = int(str(item).partition("/")[0].split(":")[-1])
    return {
        "target": target,
        "published": host_ports.get(port, port),
        "protocol": protocol,
        "mode": "host",  # no routing mesh here (no IPVS): the node's own port
    }


def _named_volumes(spec: dict[str, Any]) -> set[str]:
    """The named volumes a compose service mounts (bind mounts and tmpfs are not volumes)."""
    names = set()
    for item in spec.get("volumes") or []:
        if isinstance(item, dict):
            if item.get("type", "volume") == "volume" and item.get("source"):
                names.add(str(item["source"]))
        else:
            source, sep, _ = str(item).partition(":")
            if sep and source and not source.startswith(("/", ".", "~", "$")):
                names.add(source)
    return names


def node_bound(services: dict[str, Any], runtime: Runtime) -> set[str]:
    """The services that must run on the node the agent drives: those mounting a data volume
    (a local volume lives on one node, and backups read it through the agent's engine), the
    one the backup hooks run in (the agent execs them through that engine) and those
    publishing a host port (it opens on whichever node runs the task). The rest float."""
    data = {volume.volume for volume in runtime.data}
    bound = {volume.service for volume in runtime.data}
    if runtime.backup is not None:
        bound.add(runtime.backup.service)
    for name, spec in services.items():
        if _named_volumes(spec) & data or any(
            published_port(item) is not None for item in spec.get("ports") or []
        ):
            bound.add(name)
    return bound & services.keys()


def pin_to_node(spec: dict[str, Any], node: str) -> None:
    """Add `node.id == node` to a service's placement constraints (kept: the recipe's own)."""
    deploy = spec.setdefault("deploy", {})
    placement = deploy.get("placement") or {}
    constraints = [str(c) for c in placement.get("constraints") or []]
    rule = f"node.id == {node}"
    if rule not in constraints:
        constraints.append(rule)
    deploy["placement"] = {**placement, "constraints": constraints}


def render_app(
    compose: dict[str, Any],
    runtime: Runtime,
    config: InstallationConfig,
    app: str,
    settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The recipe's compose file as this installation runs it."""
    values = setting_values(runtime, settings)
    rendered = copy.deepcopy(compose)
    services: dict[str, Any] = rendered.get("services") or {}
    for name, spec in services.items():
        pinned = runtime.services.get(name)
        image = pinned.image if pinned else str(spec.get("image", ""))
        if not is_pinned(image):
            raise DeployError(
                f"service '{name}': image '{image}' is not pinned by digest; refusing to run it.",
                "republish the catalogue with `invoke release`, which pins every image.",
            )
        spec["image"] = image
        spec.pop("build", None)
        spec.setdefault("deploy", {})["endpoint_mode"] = "dnsrr"
        if spec.get("ports"):
            spec["ports"] = [_host_port(item, config.host_ports) for item in spec["ports"]]
        env = spec.get("environment")
        if isinstance(env, dict):
            spec["environment"] = {k: fill_settings(v, values) for k, v in env.items()}
        elif isinstance(env, list):
            spec["environment"] = [fill_settings(item, values) for item in env]
    if config.data_node:  # one engine, one node: nothing to pin
        for name in sorted(node_bound(services, runtime)):
            pin_to_node(services[name], config.data_node)
    main = services.get(runtime.main.service)
    if main is None:
        raise DeployError(
            f"The compose file of {app} has no main service '{runtime.main.service}'.",
            "republish the catalogue with `invoke release`.",
        )
    networks = main.get("networks") or ["default"]
    if isinstance(networks, dict):
        main["networks"] = {**networks, APPS_NETWORK: None}
    else:
        main["networks"] = [*networks, APPS_NETWORK]
    rendered.setdefault("networks", {})[APPS_NETWORK] = {"external": True, "name": config.network}
    rendered = dict(_escape_dollars(rendered))  # final: docker must not interpolate its env
    stack = config.stack(app)
    for name in runtime.secrets:
        rendered.setdefault("secrets", {})[name] = {
            "external": True,
            "name": secret_name(stack, name),
        }
    return rendered


def render_proxy(
    compose: dict[str, Any], image: str, config: InstallationConfig, routes_dir: Path
) -> dict[str, Any]:
    """The installation's proxy stack: its host port, its routes folder, its network."""
    if not is_pinned(image):
        raise DeployError(
            f"proxy: image '{image}' is not pinned by digest; refusing to run it.",
            "republish the catalogue with `invoke release`, which pins every image.",
        )
    rendered = copy.deepcopy(compose)
    proxy = rendered["services"][PROXY]
    proxy["image"] = image
    proxy["ports"] = [
        {"target": 8080, "published": config.http_port, "protocol": "tcp", "mode": "host"}
    ]
    proxy["volumes"] = [
        {
            "type": "bind",
            "source": str(routes_dir),
            "target": "/etc/commonshelf/proxy",
            "read_only": True,
        }
    ]
    if config.data_node:  # its routes are a bind mount of this node's folder
        pin_to_node(proxy, config.data_node)
    rendered["networks"]["apps"]["name"] = config.network
    return rendered
