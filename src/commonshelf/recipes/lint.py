"""Recipe linter: numbered rules, each with a severity and a how-to-fix line.

Every rule is explained in docs/packaging.md. A finding names the rule, the
file and (where one applies) the line. The linter never raises for a bad
recipe: whatever the input, the result is a list of findings. The slow
external checks (`docker stack config`, trivy's secret scanner) run once per
shelf or in parallel, and can be turned off with `external=False`.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import semver
import yaml

from commonshelf.catalogue.catalog import Catalog, CatalogError
from commonshelf.platform.loaders import load_with_lines
from commonshelf.recipes.compose import named_volumes
from commonshelf.recipes.model import changelog_entry, content_hash, schema_file_for, validator_for


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # "error" | "warning"
    title: str
    fix: str


_RULES = [
    Rule(
        "R001",
        "error",
        "recipe.yml exists and is valid YAML",
        "create recipe.yml (`invoke new APP` writes one) or fix the YAML syntax at the line.",
    ),
    Rule(
        "R002",
        "error",
        "recipe.yml matches the schema",
        "fix the field named in the message; see shared/schemas/recipe.schema.json.",
    ),
    Rule(
        "R003",
        "error",
        "name is lowercase-with-dashes and equals the folder name",
        "rename the folder or set `name:` to the folder name.",
    ),
    Rule(
        "R004",
        "error",
        "version is <recipe semver>+<upstream version>",
        "write the version like 1.2.0+3.2.3 (`invoke bump APP --part patch`).",
    ),
    Rule(
        "R005",
        "error",
        "a changed recipe has a higher version than the released one",
        "bump the version: `invoke bump APP --part patch` (or minor/major).",
    ),
    Rule(
        "R006",
        "error",
        "a new upstream version comes with at least a minor bump",
        "use `invoke bump APP --part minor --upstream X`.",
    ),
    Rule(
        "R007",
        "error",
        "CHANGELOG.md has an entry for the current version",
        "add a `## <version>` section to CHANGELOG.md saying what changed.",
    ),
    Rule(
        "R008",
        "error",
        "README.md exists",
        "add README.md: what the app is, its data, how to use it.",
    ),
    Rule(
        "R009",
        "error",
        "tests/ holds at least one test_*.py",
        "add tests/test_<app>.py using the `app` fixture (see recipes/custom-html).",
    ),
    Rule(
        "R010",
        "error",
        "services named in recipe.yml exist in compose.yml",
        "name services that compose.yml defines (main, data, backup, services).",
    ),
    Rule(
        "R011",
        "error",
        "every built service has a Dockerfile in its build folder",
        "add <build folder>/Dockerfile or correct `services.<name>.build`.",
    ),
    Rule(
        "R012",
        "error",
        "Dockerfiles build only on the project's base image",
        "start with `ARG BASE_IMAGE` then `FROM ${BASE_IMAGE}`; never FROM a registry image.",
    ),
    Rule(
        "R013",
        "error",
        "declared data volumes are named volumes mounted at the declared path",
        "mount `VOLUME:PATH` on the declared service and list VOLUME under top-level volumes:.",
    ),
    Rule(
        "R014",
        "error",
        "a manual migration says what the human must do",
        "add `migration.note` explaining the manual step.",
    ),
    Rule(
        "R015",
        "error",
        "compose.yml exists, is valid YAML and has services",
        "fix compose.yml (Compose file format 3.8).",
    ),
    Rule(
        "R016",
        "error",
        "compose.yml renders with `docker stack config`",
        "fix the error docker reports; run `docker stack config -c compose.yml`.",
    ),
    Rule(
        "R017",
        "error",
        'compose.yml declares version "3.8"',
        'set `version: "3.8"` at the top of compose.yml.',
    ),
    Rule(
        "R018",
        "error",
        "every service has a healthcheck",
        "add `healthcheck:` (e.g. `test: [CMD, http-health, PORT, PATH]`).",
    ),
    Rule(
        "R019",
        "error",
        "failed updates roll back",
        "set `deploy.update_config.failure_action: rollback` on every service.",
    ),
    Rule(
        "R020",
        "error",
        "images are built by the recipe or pinned by digest",
        "list the service under `services:` in recipe.yml with `build:`, "
        "or pin `image: NAME@sha256:<digest>`.",
    ),
    Rule(
        "R021",
        "error",
        "no privileged containers, added capabilities or devices",
        "remove privileged/cap_add/devices; run the app unprivileged.",
    ),
    Rule(
        "R022",
        "error",
        "the Docker socket is never mounted",
        "remove the /var/run/docker.sock mount: it gives the app root on the host.",
    ),
    Rule(
        "R023",
        "error",
        "no host network/PID/IPC unless recipe.yml says why",
        "remove it, or set `exceptions.host_network: <reason>` in recipe.yml.",
    ),
    Rule(
        "R024",
        "error",
        "no host paths mounted (user data lives in named volumes)",
        "use a named volume and declare it under `data:` in recipe.yml.",
    ),
    Rule(
        "R025",
        "error",
        "compose.yml publishes only ports declared in recipe.yml",
        "remove `ports:` (HTTP goes through the proxy) or declare the port under `ports:`.",
    ),
    Rule(
        "R026",
        "error",
        "declared host ports are unique across the shelf",
        "pick a port no other recipe declares.",
    ),
    Rule(
        "R027",
        "error",
        "secrets are external Swarm secrets declared in recipe.yml",
        "declare each secret under `secrets:` in recipe.yml and as `external: true` in compose.",
    ),
    Rule(
        "R028",
        "error",
        "no literal passwords, tokens or keys in environment",
        "use a Swarm secret (`secrets:`) and the app's *_FILE variable instead.",
    ),
    Rule(
        "R029",
        "error",
        "no secrets committed in the recipe folder",
        "remove the secret from the file (and rotate it); generate it on install instead.",
    ),
    Rule(
        "R030",
        "error",
        "each .trivyignore.yaml waiver carries a statement",
        "add `statement:` saying why the finding does not apply.",
    ),
    Rule(
        "R031",
        "error",
        "each waiver expires within 90 days",
        "set `expired_at: YYYY-MM-DD`, at most 90 days ahead, and re-review it then.",
    ),
    Rule(
        "R032",
        "warning",
        "resource hints are given",
        "add `resources: {memory_mb: N, disk_mb: N}` so users know what the app needs.",
    ),
]
RULES = {rule.id: rule for rule in _RULES}
SCHEMA_RULES = {"name": "R003", "version": "R004", "migration": "R014"}
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY)", re.IGNORECASE)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
WAIVER_DAYS = 90


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    recipe: str
    file: str
    line: int | None
    message: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class _Yaml:
    path: Path
    data: Any = None
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def line(self, *path: str | int) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class _RecipeLinter:
    """The per-recipe rules; shelf-wide rules (R026, R029) are added by `lint_shelf`."""

    def __init__(
        self, folder: Path, root: Path, catalog: Catalog | None, today: dt.date | None = None
    ) -> None:
        self.folder = folder
        self.today = today or dt.date.today()
        self.root = root
        self.catalog = catalog
        self.name = folder.name
        self.findings: list[Finding] = []
        self.manifest: dict[str, Any] | None = None  # set when recipe.yml is schema-valid
        self.compose: dict[str, Any] | None = None
        self.manifest_doc = _Yaml(folder / "recipe.yml")
        self.compose_doc = _Yaml(folder / "compose.yml")

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def add(self, rule: str, path: Path, message: str, line: int | None = None) -> None:
        info = RULES[rule]
        self.findings.append(
            Finding(rule, info.severity, self.name, self.rel(path), line, message, info.fix)
        )

    def _load(self, path: Path, rule: str) -> _Yaml | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.add(rule, path, f"{path.name} is missing")
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.add(rule, path, f"{path.name} cannot be read: {exc}")
            return None
        try:
            data, lines = load_with_lines(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or "invalid YAML"
            self.add(rule, path, f"invalid YAML: {problem}", mark.line + 1 if mark else None)
            return None
        return _Yaml(path, data, lines)

    # ---- recipe.yml

    def manifest_rules(self) -> None:
        doc = self._load(self.folder / "recipe.yml", "R001")
        if doc is None:
            return
        if not isinstance(doc.data, dict):
            self.add("R002", doc.path, "recipe.yml must be a mapping of fields", 1)
            return
        try:
            validator = validator_for(schema_file_for(self.folder))
        except (OSError, ValueError) as exc:
            self.add("R002", doc.path, f"the recipe schema cannot be read: {exc}")
            return
        errors = sorted(validator.iter_errors(doc.data), key=lambda e: list(e.absolute_path))
        for error in errors:
            path = tuple(error.absolute_path)
            rule = SCHEMA_RULES.get(str(path[0]), "R002") if path else "R002"
            where = ".".join(str(p) for p in path) or "(top level)"
            described = error.schema.get("description") if isinstance(error.schema, dict) else None
            detail = (
                f"{error.instance!r} is not valid: {described}"
                if error.validator == "pattern" and described
                else error.message
            )
            self.add(rule, doc.path, f"field '{where}': {detail}", doc.line(*path) or 1)
        if errors:
            return
        manifest: dict[str, Any] = doc.data
        self.manifest, self.manifest_doc = manifest, doc
        if manifest["name"] != self.folder.name:
            self.add(
                "R003",
                doc.path,
                f"name '{manifest['name']}' differs from the folder '{self.folder.name}'",
                doc.line("name"),
            )
        self.version_rules(manifest, doc)
        if changelog_entry(self.folder, manifest["version"]) is None:
            self.add("R007", self.folder / "CHANGELOG.md", f"no `## {manifest['version']}` entry")
        for service, spec in manifest["services"].items():
            dockerfile = self.folder / spec["build"] / "Dockerfile"
            if not dockerfile.is_file():
                self.add(
                    "R011",
                    doc.path,
                    f"service '{service}' builds from '{spec['build']}/', which has no Dockerfile",
                    doc.line("services", service, "build"),
                )
            else:
                self.dockerfile_rules(dockerfile)
        if "resources" not in manifest:
            self.add("R032", doc.path, "no `resources:` hints", None)

    def version_rules(self, manifest: dict[str, Any], doc: _Yaml) -> None:
        if self.catalog is None:
            return
        released = self.catalog.versions(self.name)
        if not released:
            return
        version = semver.Version.parse(manifest["version"])
        line = doc.line("version")
        current = content_hash(self.folder)
        latest = max(released, key=semver.Version.parse)
        entry = released.get(manifest["version"])
        if entry is not None:
            if entry.get("content_hash") != current:
                self.add(
                    "R005",
                    doc.path,
                    f"the recipe changed since {manifest['version']} was "
                    "released, but its version did not",
                    line,
                )
            return
        if version.compare(latest) < 0:
            self.add(
                "R005", doc.path, f"{manifest['version']} is older than the released {latest}", line
            )
            return
        old = semver.Version.parse(latest)
        if version.build != old.build and (version.major, version.minor) == (old.major, old.minor):
            self.add(
                "R006",
                doc.path,
                f"upstream moved from {old.build} to {version.build} "
                f"with only a patch bump from {latest}",
                line,
            )

    def dockerfile_rules(self, dockerfile: Path) -> None:
        try:
            lines = dockerfile.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            self.add("R012", dockerfile, f"cannot be read: {exc}")
            return
        stages: set[str] = set()
        has_arg = False
        for number, raw in enumerate(lines, 1):
            words = raw.split()
            if not words:
                continue
            keyword = words[0].upper()
            if keyword == "ARG" and len(words) > 1 and words[1].split("=")[0] == "BASE_IMAGE":
                has_arg = True
            if keyword != "FROM" or len(words) < 2:
                continue
            image = next((w for w in words[1:] if not w.startswith("--")), "")
            if len(words) >= 4 and words[-2].upper() == "AS":
                stages.add(words[-1].lower())
            if image in ("${BASE_IMAGE}", "$BASE_IMAGE") and has_arg:
                continue
            if image.lower() in stages:
                continue
            self.add(
                "R012", dockerfile, f"`{raw.strip()}` does not build on ${{BASE_IMAGE}}", number
            )

    # ---- compose.yml

    def compose_rules(self) -> None:
        doc = self._load(self.folder / "compose.yml", "R015")
        if doc is None:
            return
        services = _as_dict(doc.data).get("services") if isinstance(doc.data, dict) else None
        if (
            not isinstance(services, dict)
            or not services
            or not all(isinstance(spec, dict) for spec in services.values())
        ):
            self.add("R015", doc.path, "no `services:` mapping of service definitions", 1)
            return
        compose: dict[str, Any] = doc.data
        self.compose, self.compose_doc = compose, doc
        if str(compose.get("version")) != "3.8":
            self.add(
                "R017", doc.path, f"version is {compose.get('version')!r}", doc.line("version") or 1
            )
        exceptions = _as_dict((self.manifest or {}).get("exceptions"))
        for name, spec in services.items():
            at = ("services", name)
            if not _as_dict(spec.get("healthcheck")).get("test"):
                self.add("R018", doc.path, f"service '{name}' has no healthcheck", doc.line(*at))
            update = _as_dict(_as_dict(spec.get("deploy")).get("update_config"))
            if update.get("failure_action") != "rollback":
                self.add(
                    "R019",
                    doc.path,
                    f"service '{name}' does not roll back failed updates",
                    doc.line(*at, "deploy", "update_config") or doc.line(*at),
                )
            for option in ("privileged", "cap_add", "devices"):
                if spec.get(option):
                    self.add(
                        "R021", doc.path, f"service '{name}' sets {option}", doc.line(*at, option)
                    )
            for option in ("network_mode", "pid", "ipc"):
                if str(spec.get(option, "")) == "host" and not exceptions.get("host_network"):
                    self.add(
                        "R023",
                        doc.path,
                        f"service '{name}' uses the host's {option}",
                        doc.line(*at, option),
                    )
            for index, mount in enumerate(_as_list(spec.get("volumes"))):
                source = (
                    mount.split(":", 1)[0]
                    if isinstance(mount, str)
                    else str(_as_dict(mount).get("source", ""))
                )
                bind = isinstance(mount, dict) and mount.get("type") == "bind"
                line = doc.line(*at, "volumes", index)
                if "docker.sock" in source:
                    self.add("R022", doc.path, f"service '{name}' mounts {source}", line)
                elif bind or source.startswith(("/", ".", "~")):
                    self.add(
                        "R024", doc.path, f"service '{name}' mounts the host path {source}", line
                    )
            self.environment_rule(doc, name, spec)
        for network, spec in _as_dict(compose.get("networks")).items():
            if _as_dict(spec).get("driver") == "host" and not exceptions.get("host_network"):
                self.add(
                    "R023",
                    doc.path,
                    f"network '{network}' is the host network",
                    doc.line("networks", network),
                )

    def environment_rule(self, doc: _Yaml, name: str, spec: dict[str, Any]) -> None:
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
                self.add("R028", doc.path, f"service '{name}' sets {key} to a literal value", line)

    # ---- rules that need both files

    def cross_rules(self) -> None:
        if self.manifest is None or self.compose is None:
            return
        manifest, compose = self.manifest, self.compose
        recipe_yml = self.folder / "recipe.yml"
        compose_yml = self.folder / "compose.yml"
        services: dict[str, Any] = compose["services"]
        mline, cline = self.manifest_doc.line, self.compose_doc.line
        named: list[tuple[tuple[str | int, ...], str]] = [
            (("main", "service"), manifest["main"]["service"])
        ]
        named += [(("data", i, "service"), d["service"]) for i, d in enumerate(manifest["data"])]
        named += [(("services", s), s) for s in manifest["services"]]
        if "backup" in manifest:
            named.append((("backup", "service"), manifest["backup"]["service"]))
        for where, service in named:
            if service not in services:
                self.add(
                    "R010",
                    recipe_yml,
                    f"{'.'.join(map(str, where))} names service "
                    f"'{service}', which compose.yml does not define",
                    mline(*where),
                )
        volumes = _as_dict(compose.get("volumes"))
        for data in manifest["data"]:
            mounts = named_volumes(_as_dict(services.get(data["service"])).get("volumes"))
            if data["service"] in services and (
                (data["volume"], data["path"]) not in mounts or data["volume"] not in volumes
            ):
                self.add(
                    "R013",
                    compose_yml,
                    f"volume '{data['volume']}' is not a named volume "
                    f"mounted at {data['path']} in '{data['service']}'",
                    cline("services", data["service"], "volumes"),
                )
        for name, spec in services.items():
            image = str(spec.get("image", ""))
            if name not in manifest["services"] and not DIGEST.search(image):
                self.add(
                    "R020",
                    compose_yml,
                    f"service '{name}' runs '{image}', neither built "
                    "by the recipe nor pinned by digest",
                    cline("services", name, "image"),
                )
        declared = {(p["port"], p["protocol"]) for p in manifest.get("ports", [])}
        for name, spec in services.items():
            for index, port in enumerate(_as_list(spec.get("ports"))):
                published = self._published(port)
                if published is None or published not in declared:
                    self.add(
                        "R025",
                        compose_yml,
                        f"service '{name}' publishes {port!r}, which recipe.yml does not declare",
                        cline("services", name, "ports", index),
                    )
        declared_secrets = set(_as_dict(manifest.get("secrets")))
        compose_secrets = _as_dict(compose.get("secrets"))
        for secret, spec in compose_secrets.items():
            if secret not in declared_secrets or not _as_dict(spec).get("external"):
                self.add(
                    "R027",
                    compose_yml,
                    f"secret '{secret}' must be declared in recipe.yml "
                    "and be `external: true` (generated on install)",
                    cline("secrets", secret),
                )
        used = {
            str(item if isinstance(item, str) else _as_dict(item).get("source"))
            for spec in services.values()
            for item in _as_list(spec.get("secrets"))
        }
        for secret in sorted(declared_secrets - used):
            self.add(
                "R027",
                recipe_yml,
                f"secret '{secret}' is given to no service",
                mline("secrets", secret),
            )

    @staticmethod
    def _published(port: Any) -> tuple[int, str] | None:
        if isinstance(port, dict):
            try:
                return int(port["published"]), str(port.get("protocol", "tcp"))
            except (KeyError, TypeError, ValueError):
                return None
        text = str(port)
        body, _, protocol = text.partition("/")
        parts = body.split(":")
        try:
            return int(parts[-2] if len(parts) >= 2 else parts[0]), protocol or "tcp"
        except ValueError:
            return None

    # ---- other files

    def file_rules(self) -> None:
        if not (self.folder / "README.md").is_file():
            self.add("R008", self.folder / "README.md", "README.md is missing")
        if not list((self.folder / "tests").glob("test_*.py")):
            self.add("R009", self.folder / "tests", "no tests/test_*.py")
        self.waiver_rules()

    def waiver_rules(self) -> None:
        path = self.folder / ".trivyignore.yaml"
        if not path.exists():
            return
        doc = self._load(path, "R030")
        if doc is None:
            return
        today = self.today
        for kind, entries in _as_dict(doc.data).items():
            for index, entry in enumerate(_as_list(entries)):
                entry = _as_dict(entry)
                line = doc.line(kind, index)
                label = f"waiver {entry.get('id', index)!s}"
                if not str(entry.get("statement", "")).strip():
                    self.add("R030", path, f"{label} has no statement", line)
                expires = entry.get("expired_at")
                if isinstance(expires, dt.datetime):
                    expires = expires.date()
                if isinstance(expires, str):
                    try:
                        expires = dt.date.fromisoformat(expires[:10])
                    except ValueError:
                        expires = None
                if not isinstance(expires, dt.date):
                    self.add("R031", path, f"{label} has no valid expired_at date", line)
                elif expires < today:
                    self.add("R031", path, f"{label} expired on {expires}", line)
                elif (expires - today).days > WAIVER_DAYS:
                    self.add(
                        "R031",
                        path,
                        f"{label} runs to {expires}, more than {WAIVER_DAYS} days ahead",
                        line,
                    )

    def run(self) -> list[Finding]:
        self.manifest_rules()
        self.compose_rules()
        self.cross_rules()
        self.file_rules()
        return self.findings


def lint_recipe(
    folder: Path, root: Path | None = None, catalog: Catalog | None = None
) -> list[Finding]:
    """The per-recipe rules for one folder (no external tools)."""
    return _RecipeLinter(folder, root or folder.parent.parent, catalog).run()


def _stack_config_available() -> bool:
    """`docker stack config` exists in the docker CLI from 20.10.x on some builds only."""
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(
        ["docker", "stack", "config", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.returncode == 0 and "--compose-file" in done.stdout


def _stack_config(folder: Path) -> str | None:
    """docker's own rendering of compose.yml: the error line, or None when it renders."""
    done = subprocess.run(
        ["docker", "stack", "config", "-c", str(folder / "compose.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else "docker stack config failed"


def _committed_secrets(recipes_dir: Path, names: set[str]) -> dict[str, list[tuple[str, str]]]:
    """trivy's secret scanner over the whole shelf at once: recipe -> [(file:line, title)]."""
    from commonshelf.ci import scan
    from commonshelf.platform.settings import Settings

    found: dict[str, list[tuple[str, str]]] = {}
    for item in scan.scan_secrets(recipes_dir, cache_dir=Settings.load().trivy_cache):
        target = item.target
        recipe = target.split("/", 1)[0]
        if recipe in names:
            found.setdefault(recipe, []).append((target.split("/", 1)[-1], item.title))
    return found


def recipe_folders(recipes_dir: Path) -> list[Path]:
    """Every folder under recipes/ (with or without a recipe.yml: a missing one is R001)."""
    if not recipes_dir.is_dir():
        return []
    return sorted(p for p in recipes_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def lint_shelf(
    root: Path,
    names: Iterable[str] | None = None,
    *,
    catalog_path: Path | None = None,
    external: bool = True,
    today: dt.date | None = None,
) -> list[Finding]:
    """Lint the recipes of the shelf at `root` (all, or `names`)."""
    recipes_dir = root / "recipes"
    folders = [recipes_dir / n for n in names] if names else recipe_folders(recipes_dir)
    findings: list[Finding] = []
    try:
        catalog: Catalog | None = Catalog.load(catalog_path or root / "catalog.json")
    except CatalogError:
        catalog = None
    linters = [_RecipeLinter(folder, root, catalog, today) for folder in folders]
    for linter in linters:
        if linter.folder.is_dir():
            linter.run()
        else:
            linter.add("R001", linter.folder, "no such recipe folder")
    ports: dict[tuple[int, str], list[_RecipeLinter]] = {}
    by_name = {linter.name: linter for linter in linters}
    for folder in recipe_folders(recipes_dir):
        owner = by_name.get(folder.name)
        if owner is None:  # not linted now, but its ports still count
            owner = _RecipeLinter(folder, root, None)
            owner.manifest_rules()
        for port in _as_list((owner.manifest or {}).get("ports")):
            ports.setdefault((port["port"], port["protocol"]), []).append(owner)
    for (port, protocol), owners in ports.items():
        if len(owners) > 1:
            for owner in owners:
                if owner in linters:
                    others = ", ".join(o.name for o in owners if o is not owner)
                    owner.add(
                        "R026",
                        owner.folder / "recipe.yml",
                        f"host port {port}/{protocol} is also declared by {others}",
                        owner.manifest_doc.line("ports"),
                    )
    if external:
        _external_rules(recipes_dir, linters)
    for linter in linters:
        findings.extend(linter.findings)
    return sorted(findings, key=lambda f: (f.recipe, f.rule, f.file, f.line or 0))


def _external_rules(recipes_dir: Path, linters: list[_RecipeLinter]) -> None:
    renderable = [lt for lt in linters if lt.compose is not None]
    if renderable and _stack_config_available():
        with ThreadPoolExecutor(max_workers=4) as pool:
            for linter, error in zip(
                renderable, pool.map(lambda lt: _stack_config(lt.folder), renderable), strict=True
            ):
                if error:
                    linter.add("R016", linter.folder / "compose.yml", error)
    names = {lt.name for lt in linters if lt.folder.is_dir()}
    if not names:
        return
    secrets = _committed_secrets(recipes_dir, names)
    for linter in linters:
        for where, title in secrets.get(linter.name, []):
            file, _, line = where.partition(":")
            linter.add(
                "R029",
                linter.folder / file,
                title or "a secret",
                int(line) if line.isdigit() else None,
            )
