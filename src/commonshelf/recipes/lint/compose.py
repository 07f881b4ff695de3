"""Rules on compose.yml as a Swarm stack, and on how it matches what recipe.yml declares."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from commonshelf.recipes.compose import named_volumes
from commonshelf.recipes.lint.context import RecipeContext, as_dict, as_list
from commonshelf.recipes.lint.registry import Hit, rule


def services(recipe: RecipeContext) -> dict[str, dict[str, Any]]:
    """compose.yml's services when it has them (R015 passes), else {}."""
    return recipe.compose["services"] if recipe.compose is not None else {}


@rule(
    "R015",
    "error",
    "compose.yml exists, is valid YAML and has services",
    fix="fix compose.yml (Compose file format 3.8).",
)
def compose_loads(recipe: RecipeContext) -> Iterator[Hit]:
    doc = recipe.compose_doc
    if doc.error is not None:
        yield doc.error
    elif recipe.compose is None:
        yield Hit(doc.path, "no `services:` mapping of service definitions", 1)


@rule(
    "R017",
    "error",
    'compose.yml declares version "3.8"',
    fix='set `version: "3.8"` at the top of compose.yml.',
)
def compose_version(recipe: RecipeContext) -> Iterator[Hit]:
    compose = recipe.compose
    if compose is not None and str(compose.get("version")) != "3.8":
        doc = recipe.compose_doc
        yield Hit(doc.path, f"version is {compose.get('version')!r}", doc.line("version") or 1)


@rule(
    "R018",
    "error",
    "every service has a healthcheck",
    fix="add `healthcheck:` (e.g. `test: [CMD, http-health, PORT, PATH]`).",
)
def healthchecks(recipe: RecipeContext) -> Iterator[Hit]:
    doc = recipe.compose_doc
    for name, spec in services(recipe).items():
        if not as_dict(spec.get("healthcheck")).get("test"):
            yield Hit(doc.path, f"service '{name}' has no healthcheck", doc.line("services", name))


@rule(
    "R019",
    "error",
    "failed updates roll back",
    fix="set `deploy.update_config.failure_action: rollback` on every service.",
)
def rollback_on_failure(recipe: RecipeContext) -> Iterator[Hit]:
    doc = recipe.compose_doc
    for name, spec in services(recipe).items():
        update = as_dict(as_dict(spec.get("deploy")).get("update_config"))
        if update.get("failure_action") != "rollback":
            at = ("services", name)
            yield Hit(
                doc.path,
                f"service '{name}' does not roll back failed updates",
                doc.line(*at, "deploy", "update_config") or doc.line(*at),
            )


# ---- rules that need both files (a recipe.yml that passes the schema, and services)


@rule(
    "R034",
    "error",
    "a service that owns an exclusive data volume updates stop-first",
    fix="set `deploy.update_config.order: stop-first` (and rollback_config too) on that service.",
)
def exclusive_data_stops_first(recipe: RecipeContext) -> Iterator[Hit]:
    """Two tasks of a database on one volume corrupt it (docs/design.md): the old task must be
    gone before the new one starts, on update and on rollback alike."""
    if recipe.manifest is None:
        return
    doc = recipe.compose_doc
    defined = services(recipe)
    for data in as_list(recipe.manifest.get("data")):
        data = as_dict(data)
        name = str(data.get("service"))
        if not data.get("exclusive") or name not in defined:
            continue
        deploy = as_dict(defined[name].get("deploy"))
        for key in ("update_config", "rollback_config"):
            if as_dict(deploy.get(key)).get("order", "stop-first") != "stop-first":
                yield Hit(
                    doc.path,
                    f"service '{name}' owns the exclusive volume '{data.get('volume')}' but its "
                    f"{key} starts the new task first",
                    doc.line("services", name, "deploy", key) or doc.line("services", name),
                )


@rule(
    "R010",
    "error",
    "services named in recipe.yml exist in compose.yml",
    fix="name services that compose.yml defines (main, data, backup, services).",
)
def named_services_exist(recipe: RecipeContext) -> Iterator[Hit]:
    manifest = recipe.manifest
    if manifest is None or recipe.compose is None:
        return
    defined = services(recipe)
    named: list[tuple[tuple[str | int, ...], str]] = [
        (("main", "service"), manifest["main"]["service"])
    ]
    named += [(("data", i, "service"), d["service"]) for i, d in enumerate(manifest["data"])]
    named += [(("services", s), s) for s in manifest["services"]]
    if "backup" in manifest:
        named.append((("backup", "service"), manifest["backup"]["service"]))
    for where, service in named:
        if service not in defined:
            yield Hit(
                recipe.manifest_doc.path,
                f"{'.'.join(map(str, where))} names service "
                f"'{service}', which compose.yml does not define",
                recipe.manifest_doc.line(*where),
            )


@rule(
    "R013",
    "error",
    "declared data volumes are named volumes mounted at the declared path",
    fix="mount `VOLUME:PATH` on the declared service and list VOLUME under top-level volumes:.",
)
def data_volumes_mounted(recipe: RecipeContext) -> Iterator[Hit]:
    manifest, compose = recipe.manifest, recipe.compose
    if manifest is None or compose is None:
        return
    defined = services(recipe)
    volumes = as_dict(compose.get("volumes"))
    for data in manifest["data"]:
        mounts = named_volumes(as_dict(defined.get(data["service"])).get("volumes"))
        if data["service"] in defined and (
            (data["volume"], data["path"]) not in mounts or data["volume"] not in volumes
        ):
            yield Hit(
                recipe.compose_doc.path,
                f"volume '{data['volume']}' is not a named volume "
                f"mounted at {data['path']} in '{data['service']}'",
                recipe.compose_doc.line("services", data["service"], "volumes"),
            )
