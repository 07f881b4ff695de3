"""Misconfigurations of a recipe's own files, as scan findings the policy judges:
its compose.yml (source "compose") and the Dockerfiles of the images it builds
(source "dockerfile", found by the real trivy).

compose.yml is judged by the installation's own guard (`installation.guard.host_control`,
what an installation refuses to deploy), so the gate and the agent never disagree on what
gives a container control of its host; this module only names and grades what the guard
found. trivy has no compose scanner.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from commonshelf.ci.scan import Finding, parse_report
from commonshelf.installation.guard import ALLOWED_CAPABILITIES, host_control
from commonshelf.platform import trivy
from commonshelf.platform.errors import ScanError
from commonshelf.platform.loaders import (
    COMPOSE,
    REPORT,
    InputError,
    load_json_bytes,
    load_yaml_with_lines,
)
from commonshelf.recipes.model import Recipe

# Finding ids of compose.yml misconfigurations (waivable like trivy's own check ids).
PRIVILEGED = "CS-COMPOSE-PRIVILEGED"  # privileged mode, also for lifecycle hooks
ENGINE_SOCKET = "CS-COMPOSE-ENGINE-SOCKET"  # the engine's API socket, however it is handed
CAPABILITY = "CS-COMPOSE-CAP-ADD"
DEVICE = "CS-COMPOSE-DEVICE"  # devices, device cgroup rules, GPUs
HOST_NAMESPACE = "CS-COMPOSE-HOST-NAMESPACE"  # host network, PID, IPC, UTS, user, cgroup
HOST_PATH = "CS-COMPOSE-HOST-PATH"  # a bind mount of a host path
HOST_ACCESS = "CS-COMPOSE-HOST-ACCESS"  # anything else the guard refuses

# (id, severity) by the compose key the guard names in `setting`.
_GRADES: dict[str, tuple[str, str]] = {
    "privileged": (PRIVILEGED, "CRITICAL"),
    "post_start": (PRIVILEGED, "CRITICAL"),
    "pre_stop": (PRIVILEGED, "CRITICAL"),
    "use_api_socket": (ENGINE_SOCKET, "CRITICAL"),
    "cap_add": (CAPABILITY, "HIGH"),
    "devices": (DEVICE, "HIGH"),
    "device_cgroup_rules": (DEVICE, "HIGH"),
    "gpus": (DEVICE, "HIGH"),
    "deploy": (DEVICE, "HIGH"),  # deploy.resources.reservations.devices
    "network_mode": (HOST_NAMESPACE, "HIGH"),
    "networks": (HOST_NAMESPACE, "HIGH"),
    "pid": (HOST_NAMESPACE, "HIGH"),
    "ipc": (HOST_NAMESPACE, "HIGH"),
    "uts": (HOST_NAMESPACE, "HIGH"),
    "userns_mode": (HOST_NAMESPACE, "HIGH"),
    "cgroup": (HOST_NAMESPACE, "HIGH"),
    "volumes": (HOST_PATH, "HIGH"),
}
ENGINE_SOCKETS = frozenset({"/var/run/docker.sock", "/run/docker.sock"})
_SOCKET_NAMES = frozenset({"docker.sock", "podman.sock", "containerd.sock"})
_SETTING = re.compile(r"([a-z_]+)(?:\[(\d+)\])?")
_SUBJECT = re.compile(r"service '(.*)'")


def is_engine_socket(source: str) -> bool:
    """Whether a host path mounted into a container reaches the engine's API socket: the
    socket itself (by any path that ends in it) or a folder that holds it (/, /run, /var,
    /var/run), through which the socket is reachable all the same."""
    if not source.startswith("/"):
        return False
    path = posixpath.normpath(source)
    if posixpath.basename(path) in _SOCKET_NAMES or path in ENGINE_SOCKETS:
        return True
    return any(socket.startswith(path.rstrip("/") + "/") for socket in ENGINE_SOCKETS)


def mount_source(entry: Any) -> str:
    """The host side of a compose volume entry, short (`SRC:DST[:MODE]`) or long syntax."""
    if isinstance(entry, str):
        return entry.split(":", 1)[0] if ":" in entry else ""
    if isinstance(entry, dict):
        return str(entry.get("source") or "")
    return ""


def compose_findings(recipe: Recipe) -> list[Finding]:
    """What the installation's guard would refuse in the recipe's compose.yml, graded:
    privileged mode and the engine socket CRITICAL, everything else HIGH; capabilities the
    guard allows (Docker defaults it gives back after cap_drop) MEDIUM, still reported."""
    path = recipe.compose_path
    try:
        compose, lines = load_yaml_with_lines(path, COMPOSE)
    except InputError as exc:
        raise ScanError(exc.what, exc.fix) from None
    label = path.name
    found: list[Finding] = []
    for item in host_control(compose):
        key, index = _setting(item.setting)
        service = _service_name(item.subject)
        spec = _spec(compose, service)
        rule_id, severity = _GRADES.get(key, (HOST_ACCESS, "HIGH"))
        if key == "volumes" and index is not None:
            entries = spec.get("volumes")
            listed = entries if isinstance(entries, list) else []
            source = mount_source(listed[index]) if index < len(listed) else ""
            if is_engine_socket(source):
                rule_id, severity = ENGINE_SOCKET, "CRITICAL"
        line = _line(lines, service, key, index)
        found.append(_finding(rule_id, severity, item.sentence(), label, line))
    for service, spec in _services(compose).items():
        caps = spec.get("cap_add")
        for index, cap in enumerate(caps if isinstance(caps, list) else []):
            if str(cap).strip().upper().removeprefix("CAP_") in ALLOWED_CAPABILITIES:
                title = f"service '{service}': adds the capability {cap} (a Docker default)"
                line = _line(lines, service, "cap_add", index)
                found.append(_finding(CAPABILITY, "MEDIUM", title, label, line))
    return found


def _finding(rule_id: str, severity: str, title: str, label: str, line: int | None) -> Finding:
    target = f"{label}:{line}" if line else label
    return Finding(
        "misconfiguration", rule_id, severity, target, title, path=label, source="compose"
    )


def _setting(setting: str) -> tuple[str, int | None]:
    """('volumes', 0) from the guard's 'volumes[0]'; ('pid', None) from 'pid: host'."""
    match = _SETTING.match(setting)
    if match is None:
        return "", None
    return match.group(1), int(match.group(2)) if match.group(2) else None


def _service_name(subject: str) -> str:
    match = _SUBJECT.fullmatch(subject)
    return match.group(1) if match else ""


def _services(compose: Any) -> dict[str, dict[str, Any]]:
    services = compose.get("services") if isinstance(compose, dict) else None
    if not isinstance(services, dict):
        return {}
    return {str(k): v for k, v in services.items() if isinstance(v, dict)}


def _spec(compose: Any, service: str) -> dict[str, Any]:
    return _services(compose).get(service, {})


def _line(
    lines: dict[tuple[str | int, ...], int], service: str, key: str, index: int | None
) -> int | None:
    """The line of `services.SERVICE.KEY[INDEX]`, else of the nearest parent that has one."""
    path: tuple[str | int, ...] = ("services", service, key)
    if index is not None:
        path += (index,)
    while len(path) > 1:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


# ---- Dockerfiles


def image_folders(recipe: Recipe) -> dict[str, Path]:
    """label -> folder of each image the recipe builds, and each shared platform service
    it names (its image runs in the recipe's stack): `image`, `shared/services/postgres`."""
    folders = {build: recipe.path / build for build in sorted(set(recipe.builds.values()))}
    for folder in sorted(set(recipe.platform.values())):
        shelf = recipe.path.parent.parent
        try:
            label = str(folder.relative_to(shelf))
        except ValueError:
            label = str(folder)
        folders[label] = folder
    return folders


def dockerfile_findings(recipe: Recipe, cache_dir: Path) -> list[Finding]:
    """trivy's Dockerfile checks over each image folder of the recipe (source "dockerfile",
    path `<folder label>/Dockerfile`). Run as `trivy fs --scanners misconfig`: the same
    checks as `trivy config`, which refuses the offline flags `platform.trivy` adds. The
    folder's own .trivyignore is not read: waivers are the gate's business."""
    found: list[Finding] = []
    for label, folder in image_folders(recipe).items():
        out = trivy.run(
            "fs",
            "--scanners",
            "misconfig",
            "--misconfig-scanners",
            "dockerfile",
            "--ignorefile",
            "",
            "--format",
            "json",
            str(folder),
            cache_dir=cache_dir,
            target=str(folder),
            fix=f"check that {folder} holds a readable Dockerfile.",
        )
        try:
            report = load_json_bytes(out, f"trivy's report on {folder}", REPORT)
        except InputError as exc:
            raise ScanError(
                f"trivy printed no readable JSON report for {folder} ({exc.problem}).",
                "run the scan by hand to see trivy's output.",
            ) from None
        if not isinstance(report, dict):
            raise ScanError(
                f"trivy printed no JSON report for {folder} (a {type(report).__name__}).",
                "run the scan by hand to see trivy's output.",
            )
        for finding in parse_report(report):
            where = posixpath.join(label, finding.path) if finding.path else label
            found.append(replace(finding, target=where, path=where, source="dockerfile"))
    return found
