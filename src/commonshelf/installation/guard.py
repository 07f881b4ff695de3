"""Defence in depth: a service that could control its host is never deployed, signed or not.

A valid signature says who published a compose file, not that it is harmless: a stolen key,
a compromised release job or a careless recipe would otherwise hand an app the engine's
socket (root on the host) or the host's namespaces. The deployer checks the rendered stack
just before `docker stack deploy` and refuses, in one line naming the app, the service and
the setting, anything that gives a container more than its own sandbox:

- privileged mode (also for lifecycle hooks), the engine's API socket (`use_api_socket`);
- the host's namespaces (network, PID, IPC, UTS, user, cgroup) or another container's, and
  the external network named `host`;
- any host path: bind mounts in short (`/abs:/x`, `./rel:/x`, `~/x:/x`) and long syntax,
  named pipes, mount types other than `volume` and `tmpfs`, volumes whose local driver binds
  or mounts a device or path, volume plugins, volumes that exist outside the app's stack
  (`external` or a fixed `name`: one may be a bind made by hand, or another app's data),
  `volumes_from` a container, and host files or the agent's environment read into the stack
  (`env_file`, secrets and configs from `file:` or `environment:`);
- capabilities beyond ALLOWED_CAPABILITIES, devices, device cgroup rules, GPUs;
- `security_opt` other than `no-new-privileges`, any `cgroup_parent`, and sysctls the kernel
  does not keep per container (see NAMESPACED_SYSCTLS).

Fine: published ports (render_app writes them in long syntax, host mode), tmpfs, the
stack's own named volumes and networks. `docker stack deploy` ignores some of these keys
today; they are refused anyway, because a catalogue asking for them is hostile and a later
engine may honour them. Only what services use is checked: a top-level volume or network no
service names is never created. The proxy's own bind mount (render_proxy) is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec

from commonshelf.platform.errors import DeployError

ALLOWED_CAPABILITIES = frozenset(
    {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "NET_BIND_SERVICE", "KILL"}
)
"""Capabilities a service may add: each is in Docker's default set, so adding it only gives
back what a `cap_drop: [ALL]` took, and each acts on what the container already sees (its
files and volumes, its own processes, its ports under 1024): what an image that starts as
root and drops to its user needs. The rest of the default set is refused too: NET_RAW forges
packets to other apps on the shared network, MKNOD makes device nodes, SETPCAP and SETFCAP
hand capabilities on, and no recipe needs SYS_CHROOT, FSETID or AUDIT_WRITE. Anything beyond
the default set (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, ALL, ...) is host control."""

NAMESPACED_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)
"""Decision on sysctls: allowed only where the kernel keeps one value per container (its IPC
namespace, these names; its own network and message queue namespaces, `net.*` and
`fs.mqueue.*`, safe because host networking is refused). Any other sysctl changes the whole
host (`kernel.core_pattern` runs a program as root on the host), so it is refused."""
_NAMESPACED_PREFIXES = ("net.", "fs.mqueue.")

# (compose key, the namespace it shares): `host`, or `container:NAME` (a container outside
# the app, whose privileges the agent cannot see), is refused; `service:NAME` stays in the app.
_NAMESPACES = {
    "network_mode": "network",
    "pid": "PID",
    "ipc": "IPC",
    "uts": "UTS",
    "userns_mode": "user",
    "cgroup": "cgroup",
}
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # anything else is a path
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")  # C:\ or C:/, a Windows host path
_TMPFS_OPTIONS = frozenset(
    {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "noexec", "nosuid", "nodev"}
    | {"ro", "rw", "noatime", "nodiratime", "relatime"}
)
_NO_NEW_PRIVILEGES = re.compile(r"no-new-privileges(?:[:=](?:true|false))?")
_FALSE = frozenset({"", "false", "no", "off", "0"})

FIX = (
    "the catalogue's publisher must remove that setting from the recipe and release again "
    "(an installation never runs a service that could control its host); keep the version "
    "you run and report it to them."
)


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One thing in a stack that would give a container control of its host."""

    subject: str  # "service 'app'", "secret 'key'"
    does: str  # "mounts the host path /var/run/docker.sock"
    setting: str  # where in the compose file: "volumes[0]"

    def sentence(self) -> str:
        return f"{self.subject}: {self.does} ({self.setting})"


class HostControlError(DeployError):
    """A verified stack asks for control of the host; nothing was deployed."""

    def __init__(self, app: str, findings: list[Finding]) -> None:
        self.app = app
        self.findings = tuple(findings)
        more = len(findings) - 1
        also = f", and {more} more setting{'s' if more > 1 else ''} like it" if more else ""
        super().__init__(
            f"catalog app {_shown(app)}, {findings[0].sentence()}{also}; "
            "refusing to deploy it; nothing was changed.",
            FIX,
        )


def refuse_host_control(app: str, compose: dict[str, Any]) -> None:
    """Raise HostControlError when any service of `compose` could control the host."""
    findings = host_control(compose)
    if findings:
        raise HostControlError(app, findings)


def host_control(compose: Any) -> list[Finding]:
    """Every setting of `compose` that would give a container control of its host."""
    if not isinstance(compose, dict):
        return [Finding(subject="the compose file", does="is not a mapping", setting="top")]
    services = compose.get("services") or {}
    if not isinstance(services, dict):
        return [Finding(subject="the compose file", does="is not a mapping", setting="services")]
    found: list[Finding] = []
    for name, spec in services.items():
        subject = f"service '{_shown(name)}'"
        if not isinstance(spec, dict):
            found.append(Finding(subject=subject, does="is not a mapping", setting="services"))
            continue
        found += (
            Finding(subject=subject, does=does, setting=setting)
            for does, setting in _service(spec, compose)
        )
    for kind in ("secrets", "configs"):
        found += _sourced(kind, compose.get(kind))
    return found


# ---- one service


def _service(spec: dict[str, Any], compose: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(what it does, which setting) for each way the service would control the host."""
    if _truthy(spec.get("privileged")):
        yield "runs privileged", "privileged: true"
    if _truthy(spec.get("use_api_socket")):
        yield "is handed the engine's API socket", "use_api_socket: true"
    for key in ("post_start", "pre_stop"):
        for i, hook in enumerate(_listed(spec.get(key))):
            if isinstance(hook, dict) and _truthy(hook.get("privileged")):
                yield "runs a lifecycle hook privileged", f"{key}[{i}].privileged"
    if spec.get("provider") is not None:
        yield "runs a provider plugin on the host", "provider"
    for key, namespace in _NAMESPACES.items():
        yield from _namespace(key, namespace, spec.get(key))
    yield from _networks(spec.get("networks"), compose.get("networks"))
    for i, entry in enumerate(_listed(spec.get("volumes"))):
        yield from _mount(entry, f"volumes[{i}]", compose.get("volumes"))
    for i, entry in enumerate(_listed(spec.get("volumes_from"))):
        if not isinstance(entry, str) or entry.strip().lower().startswith("container:"):
            yield f"mounts the volumes of {_shown(entry)}, outside the app", f"volumes_from[{i}]"
    for i, entry in enumerate(_listed(spec.get("env_file"))):
        path = entry.get("path") if isinstance(entry, dict) else entry
        yield f"reads the host file {_shown(path)} into its environment", f"env_file[{i}]"
    yield from _privileges(spec)


def _privileges(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Capabilities, devices, confinement and kernel settings."""
    for i, cap in enumerate(_listed(spec.get("cap_add"))):
        if str(cap).strip().upper().removeprefix("CAP_") not in ALLOWED_CAPABILITIES:
            allowed = ", ".join(sorted(ALLOWED_CAPABILITIES))
            yield f"adds the capability {_shown(cap)} (allowed: {allowed})", f"cap_add[{i}]"
    for i, device in enumerate(_listed(spec.get("devices"))):
        host = str(device).split(":")[0] if isinstance(device, str) else device
        yield f"gets the host device {_shown(host)}", f"devices[{i}]"
    for i, rule in enumerate(_listed(spec.get("device_cgroup_rules"))):
        yield f"may use host devices by the rule {_shown(rule)}", f"device_cgroup_rules[{i}]"
    if spec.get("gpus") not in (None, [], ""):
        yield "gets the host's GPUs", "gpus"
    deploy = spec.get("deploy")
    resources = deploy.get("resources") if isinstance(deploy, dict) else None
    reservations = resources.get("reservations") if isinstance(resources, dict) else None
    if isinstance(reservations, dict):
        for i, _ in enumerate(_listed(reservations.get("devices"))):
            yield "reserves host devices", f"deploy.resources.reservations.devices[{i}]"
    for i, option in enumerate(_listed(spec.get("security_opt"))):
        text = str(option).strip().lower()
        if not _NO_NEW_PRIVILEGES.fullmatch(text):
            how = "disables" if "unconfined" in text or "disable" in text else "replaces"
            yield f"{how} the engine's confinement with {_shown(option)}", f"security_opt[{i}]"
    if spec.get("cgroup_parent") not in (None, ""):
        parent = _shown(spec.get("cgroup_parent"))
        yield f"puts its containers in the host's cgroup {parent}", "cgroup_parent"
    sysctls = spec.get("sysctls")
    names = sysctls if isinstance(sysctls, dict) else _listed(sysctls)
    for name in names:
        key = str(name).split("=")[0].strip().replace("/", ".")
        if key not in NAMESPACED_SYSCTLS and not key.startswith(_NAMESPACED_PREFIXES):
            yield f"sets the kernel setting {_shown(key)} for the whole host", "sysctls"


def _namespace(key: str, namespace: str, value: Any) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    mode = value.strip().lower() if isinstance(value, str) else None
    if mode == "host":
        yield f"shares the host's {namespace} namespace", f"{key}: host"
    elif mode is None or mode.startswith("container:"):
        yield f"shares the {namespace} namespace of {_shown(value)}, outside the app", key


def _networks(used: Any, defined: Any) -> Iterator[tuple[str, str]]:
    """The host's network joined through a network, whatever the stack calls it."""
    definitions = defined if isinstance(defined, dict) else {}
    listed = isinstance(used, list)
    for i, key in enumerate(_listed(used)):
        setting = f"networks[{i}]" if listed else f"networks.{_shown(key)}"
        if not isinstance(key, str):
            yield f"names a network the agent cannot read ({_shown(key)})", setting
            continue
        if key not in definitions:
            if str(key).strip().lower() == "host":
                yield "joins the host's network", setting
            continue
        definition = definitions[key] if isinstance(definitions[key], dict) else {}
        external = definition.get("external")
        name = definition.get("name")
        if isinstance(external, dict):  # the old `external: {name: host}`
            name = name or external.get("name")
        engine_name = (name or key) if _truthy(external) else name
        driver = definition.get("driver")
        if str(engine_name).strip().lower() == "host" or str(driver).strip().lower() == "host":
            yield "joins the host's network", f"{setting}; networks.{_shown(key)}"


# ---- mounts


def _mount(entry: Any, setting: str, defined: Any) -> Iterator[tuple[str, str]]:
    """A host path, pipe or unknown kind of mount; a named volume by its definition."""
    if isinstance(entry, str):
        kind, source = _short_syntax(entry)
    elif isinstance(entry, dict):
        source = entry.get("source")
        inferred = "volume" if source is None or _is_volume_name(source) else "bind"
        kind = str(entry.get("type") or inferred).strip().lower()
    else:
        yield f"has a mount the agent cannot read ({_shown(entry)})", setting
        return
    if kind == "tmpfs" or (kind == "volume" and source in (None, "")):
        return
    if kind == "bind" or (kind == "volume" and not _is_volume_name(source)):
        yield f"mounts the host path {_shown(source)}", setting
    elif kind == "npipe":
        yield f"mounts the host's named pipe {_shown(source)}", setting
    elif kind != "volume":
        yield f"asks for a mount of type {_shown(kind)}, which is not allowed", setting
    elif not isinstance(defined, dict):
        if defined is not None:
            yield "names a volume, but the top-level volumes cannot be read", setting
    elif source in defined:
        problem = _volume_problem(defined[source])
        if problem is not None:
            does, key = problem
            yield f"mounts the volume '{source}', which {does}", f"{setting}; volumes.{source}{key}"


def _short_syntax(entry: str) -> tuple[str, Any]:
    """(kind, source) of `[SOURCE:]TARGET[:MODE]`: a source that is not a volume name is a
    host path (absolute, `./` or `../` relative, `~`, a drive letter, or anything odder)."""
    if _DRIVE.match(entry):
        return "bind", entry
    parts = entry.split(":")
    if len(parts) == 1:
        return "volume", None  # an anonymous volume at that path in the container
    return ("volume" if _is_volume_name(parts[0]) else "bind"), parts[0]


def _volume_problem(definition: Any) -> tuple[str, str] | None:
    """(what the top-level volume definition does, where) when it reaches beyond the stack."""
    if definition is None:
        return None
    if not isinstance(definition, dict):
        return "has a definition that cannot be read", ""
    if _truthy(definition.get("external")):
        return "exists outside the app (it may bind a host path or hold another app's data)", (
            ".external"
        )
    if definition.get("name") is not None:
        return f"is the volume {_shown(definition['name'])} outside the app's stack", ".name"
    driver = definition.get("driver")
    if driver not in (None, "local"):
        return f"uses the volume plugin {_shown(driver)}, whose options are unchecked", ".driver"
    opts = definition.get("driver_opts")
    if opts is None or opts == {}:
        return None
    if not isinstance(opts, dict) or set(opts) - {"type", "o", "device"}:
        return f"has driver options that are not allowed ({_shown(opts)})", ".driver_opts"
    flags = {part.split("=")[0].strip().lower() for part in str(opts.get("o", "")).split(",")}
    flags.discard("")
    fstype = str(opts.get("type", "")).strip().lower()
    device = opts.get("device")
    if flags & {"bind", "rbind"} or fstype in ("none", "bind", "rbind"):
        return f"binds the host path {_shown(device)}", ".driver_opts"
    if fstype != "tmpfs" or device not in (None, "tmpfs") or flags - _TMPFS_OPTIONS:
        typed = f" ({_shown(fstype)})" if fstype else ""
        return f"mounts {_shown(device)}{typed} on the host", ".driver_opts"
    return None


def _sourced(kind: str, definitions: Any) -> Iterator[Finding]:
    """Secrets and configs that `docker stack deploy` would read from the agent's host."""
    if not isinstance(definitions, dict):
        return
    for name, definition in definitions.items():
        if not isinstance(definition, dict):
            continue
        subject = f"{kind[:-1]} '{_shown(name)}'"
        if definition.get("file") is not None:
            path = _shown(definition["file"])
            does = f"reads the host file {path} into the stack"
            yield Finding(subject=subject, does=does, setting=f"{kind}.{_shown(name)}.file")
        if definition.get("environment") is not None:
            variable = _shown(definition["environment"])
            does = f"reads the agent's environment variable {variable}"
            yield Finding(subject=subject, does=does, setting=f"{kind}.{_shown(name)}.environment")


# ---- reading untrusted values


def _is_volume_name(value: Any) -> bool:
    return isinstance(value, str) and _VOLUME_NAME.fullmatch(value) is not None


def _truthy(value: Any) -> bool:
    """Whether a flag is set: anything but absent, false or a false-looking string (a
    hostile file may spell `true` in any way the engine might accept)."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    return not (isinstance(value, int | float) and value == 0)


def _listed(value: Any) -> list[Any]:
    """The entries of a list setting (a mapping's keys; a lone scalar as one entry)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value)
    return [value]


def _shown(value: Any, limit: int = 120) -> str:
    """An untrusted value as one short line: no control characters, no endless text."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
