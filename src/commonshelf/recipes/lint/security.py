"""Rules that keep a stack contained: pinned images, no host access, declared ports and secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from commonshelf.platform.compose_syntax import published_port
from commonshelf.recipes.lint.compose import services
from commonshelf.recipes.lint.context import RecipeContext, as_dict, as_list
from commonshelf.recipes.lint.registry import Hit, rule

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY)", re.IGNORECASE)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@rule(
    "R020",
    "error",
    "images are built by the recipe or pinned by digest",
    fix="list the service under `services:` in recipe.yml with `build:`, "
    "or pin `image: NAME@sha256:<digest>`.",
)
def images_built_or_pinned(recipe: RecipeContext) -> Iterator[Hit]:
    manifest = recipe.manifest
    if manifest is None:
        return
    for name, spec in services(recipe).items():
        image = str(spec.get("image", ""))
        if name not in manifest["services"] and not DIGEST.search(image):
            yield Hit(
                recipe.compose_doc.path,
                f"service '{name}' runs '{image}', neither built "
                "by the recipe nor pinned by digest",
                recipe.compose_doc.line("services", name, "image"),
            )


@rule(
    "R021",
    "error",
    "no privileged containers, added capabilities or devices",
    fix="remove privileged/cap_add/devices; run the app unprivileged.",
)
def unprivileged(recipe: RecipeContext) -> Iterator[Hit]:
    doc = recipe.compose_doc
    for name, spec in services(recipe).items():
        for option in ("privileged", "cap_add", "devices"):
            if spec.get(option):
                yield Hit(
                    doc.path, f"service '{name}' sets {option}", doc.line("services", name, option)
                )


def _mounts(recipe: RecipeContext) -> Iterator[tuple[str, str, bool, int | None]]:
    """(service, source, is a bind mount, line) for each volume mount of each service."""
    for name, spec in services(recipe).items():
        for index, mount in enumerate(as_list(spec.get("volumes"))):
            source = (
                mount.split(":", 1)[0]
                if isinstance(mount, str)
                else str(as_dict(mount).get("source", ""))
            )
            bind = isinstance(mount, dict) and mount.get("type") == "bind"
            yield name, source, bind, recipe.compose_doc.line("services", name, "volumes", index)


@rule(
    "R022",
    "error",
    "the Docker socket is never mounted",
    fix="remove the /var/run/docker.sock mount: it gives the app root on the host.",
)
def no_docker_socket(recipe: RecipeContext) -> Iterator[Hit]:
    for name, source, _, line in _mounts(recipe):
        if "docker.sock" in source:
            yield Hit(recipe.compose_doc.path, f"service '{name}' mounts {source}", line)


@rule(
    "R023",
    "error",
    "no host network/PID/IPC unless recipe.yml says why",
    fix="remove it, or set `exceptions.host_network: <reason>` in recipe.yml.",
)
def no_host_namespaces(recipe: RecipeContext) -> Iterator[Hit]:
    compose = recipe.compose
    if compose is None:
        return
    if as_dict((recipe.manifest or {}).get("exceptions")).get("host_network"):
        return
    doc = recipe.compose_doc
    for name, spec in services(recipe).items():
        for option in ("network_mode", "pid", "ipc"):
            if str(spec.get(option, "")) == "host":
                yield Hit(
                    doc.path,
                    f"service '{name}' uses the host's {option}",
                    doc.line("services", name, option),
                )
    for network, spec in as_dict(compose.get("networks")).items():
        if as_dict(spec).get("driver") == "host":
            yield Hit(
                doc.path, f"network '{network}' is the host network", doc.line("networks", network)
            )


@rule(
    "R024",
    "error",
    "no host paths mounted (user data lives in named volumes)",
    fix="use a named volume and declare it under `data:` in recipe.yml.",
)
def no_host_paths(recipe: RecipeContext) -> Iterator[Hit]:
    for name, source, bind, line in _mounts(recipe):
        if "docker.sock" not in source and (bind or source.startswith(("/", ".", "~"))):
            yield Hit(
                recipe.compose_doc.path, f"service '{name}' mounts the host path {source}", line
            )


@rule(
    "R025",
    "error",
    "compose.yml publishes only ports declared in recipe.yml",
    fix="remove `ports:` (HTTP goes through the proxy) or declare the port under `ports:`.",
)
def declared_ports_only(recipe: RecipeContext) -> Iterator[Hit]:
    manifest = recipe.manifest
    if manifest is None:
        return
    declared = {(p["port"], p["protocol"]) for p in manifest.get("ports", [])}
    for name, spec in services(recipe).items():
        for index, port in enumerate(as_list(spec.get("ports"))):
            published = published_port(port)
            if published is None or published not in declared:
                yield Hit(
                    recipe.compose_doc.path,
                    f"service '{name}' publishes {port!r}, which recipe.yml does not declare",
                    recipe.compose_doc.line("services", name, "ports", index),
                )


@rule(
    "R027",
    "error",
    "secrets are external Swarm secrets declared in recipe.yml",
    fix="declare each secret under `secrets:` in recipe.yml and as `external: true` in compose.",
)
def external_declared_secrets(recipe: RecipeContext) -> Iterator[Hit]:
    manifest, compose = recipe.manifest, recipe.compose
    if manifest is None or compose is None:
        return
    declared = set(as_dict(manifest.get("secrets")))
    for secret, spec in as_dict(compose.get("secrets")).items():
        if secret not in declared or not as_dict(spec).get("external"):
            yield Hit(
                recipe.compose_doc.path,
                f"secret '{secret}' must be declared in recipe.yml "
                "and be `external: true` (generated on install)",
                recipe.compose_doc.line("secrets", secret),
            )
    used = {
        str(item if isinstance(item, str) else as_dict(item).get("source"))
        for spec in services(recipe).values()
        for item in as_list(spec.get("secrets"))
    }
    for secret in sorted(declared - used):
        yield Hit(
            recipe.manifest_doc.path,
            f"secret '{secret}' is given to no service",
            recipe.manifest_doc.line("secrets", secret),
        )


@rule(
    "R028",
    "error",
    "no literal passwords, tokens or keys in environment",
    fix="use a Swarm secret (`secrets:`) and the app's *_FILE variable instead.",
)
def no_literal_secrets(recipe: RecipeContext) -> Iterator[Hit]:
    doc = recipe.compose_doc
    for name, spec in services(recipe).items():
        env = spec.get("environment")
        pairs: list[tuple[str, Any, int | None]] = []
        if isinstance(env, dict):
            pairs = [
                (str(k), v, doc.line("services", name, "environment", str(k)))
                for k, v in env.items()
            ]
        elif isinstance(env, list):
            for index, item in enumerate(env):
                key, _, value = str(item).partition("=")
                pairs.append((key, value or None, doc.line("services", name, "environment", index)))
        for key, value, line in pairs:
            literal = value is not None and str(value) != "" and "${" not in str(value)
            if SECRET_NAME.search(key) and not key.endswith("_FILE") and literal:
                yield Hit(doc.path, f"service '{name}' sets {key} to a literal value", line)
