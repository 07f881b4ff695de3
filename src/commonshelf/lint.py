"""Recipe linter: numbered rules, each with a severity and a how-to-fix line.

Rules in this first cut check what the pipeline itself depends on; the full
rule set (docs/packaging.md) grows from here.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import RecipeError
from .recipe import discover, load_recipe


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # "error" | "warning"
    title: str
    fix: str


RULES = {
    rule.id: rule
    for rule in (
        Rule(
            "R001",
            "error",
            "recipe.yml and compose.yml load and match the schema",
            "fix the field named in the message; see shared/schemas/recipe.schema.json.",
        ),
        Rule(
            "R002",
            "error",
            "compose.yml renders with `docker stack config`",
            "fix the compose error named in the message (Compose file format 3.8).",
        ),
        Rule(
            "R003",
            "error",
            "every service has a healthcheck",
            "add a `healthcheck:` (e.g. `test: [CMD, http-health, PORT, PATH]`).",
        ),
        Rule(
            "R004",
            "error",
            "updates roll back on failure",
            "set `deploy.update_config.failure_action: rollback` on every service.",
        ),
        Rule(
            "R005",
            "error",
            "apps publish no host ports (the installation's proxy does)",
            "remove `ports:`; the proxy routes APP.DOMAIN to `main.port`.",
        ),
    )
}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    recipe: str
    file: str
    message: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finding(rule_id: str, recipe: str, file: Path | str, message: str) -> Finding:
    rule = RULES[rule_id]
    return Finding(rule.id, rule.severity, recipe, str(file), message, rule.fix)


def lint_recipe(folder: Path, docker_check: bool = True) -> list[Finding]:
    name = folder.name
    try:
        recipe = load_recipe(folder)
    except RecipeError as exc:
        return [_finding("R001", name, folder, exc.what)]
    findings: list[Finding] = []
    compose = recipe.compose()
    for service, spec in compose["services"].items():
        spec = spec or {}
        if not (spec.get("healthcheck") or {}).get("test"):
            findings.append(
                _finding(
                    "R003", name, recipe.compose_path, f"service '{service}' has no healthcheck"
                )
            )
        update = (spec.get("deploy") or {}).get("update_config") or {}
        if update.get("failure_action") != "rollback":
            findings.append(
                _finding(
                    "R004",
                    name,
                    recipe.compose_path,
                    f"service '{service}' does not roll back failed updates",
                )
            )
        if spec.get("ports"):
            findings.append(
                _finding("R005", name, recipe.compose_path, f"service '{service}' publishes ports")
            )
    if docker_check and shutil.which("docker"):
        done = subprocess.run(
            ["docker", "stack", "config", "-c", str(recipe.compose_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            findings.append(
                _finding(
                    "R002",
                    name,
                    recipe.compose_path,
                    done.stderr.strip().splitlines()[-1]
                    if done.stderr.strip()
                    else "docker stack config failed",
                )
            )
    return findings


def lint_shelf(
    recipes_dir: Path, names: list[str] | None = None, docker_check: bool = True
) -> list[Finding]:
    folders = [recipes_dir / n for n in names] if names else discover(recipes_dir)
    return [f for folder in folders for f in lint_recipe(folder, docker_check)]
