"""A signed stack that would control its host is refused, in every syntax compose allows, with
one line naming the app, the service and the setting; the shelf's own recipes all pass."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from commonshelf.catalogue.contract import MainService, Runtime, SecretSpec, ServiceImage
from commonshelf.installation.guard import (
    ALLOWED_CAPABILITIES,
    HostControlError,
    host_control,
    refuse_host_control,
)
from commonshelf.installation.render import render_app, render_proxy
from commonshelf.installation.state import InstallationConfig
from commonshelf.platform.errors import DeployError

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
DIGEST = "sha256:" + "b" * 64
PINNED = f"127.0.0.1:5000/commonshelf/x-app@{DIGEST}"
CONFIG = InstallationConfig(repository="http://127.0.0.1:8700", http_port=8081, namespace="g-")


def _app(service: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A stack with one service 'app' (the image pinned) and top-level sections."""
    return {"services": {"app": {"image": PINNED, **service}}, **top}


def _refusal(compose: dict[str, Any], app: str = "hostile") -> str:
    with pytest.raises(HostControlError) as caught:
        refuse_host_control(app, compose)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"catalog app {app}, ")
    assert "; refusing to deploy it; nothing was changed. Fix: " in message
    assert caught.value.fix
    return message


def test_the_engine_socket_is_named_exactly() -> None:
    compose = _app({"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]})
    with pytest.raises(DeployError) as caught:  # a DeployError: the CLI prints one line
        refuse_host_control("X", compose)
    assert isinstance(caught.value, HostControlError)
    assert caught.value.what == (
        "catalog app X, service 'app': mounts the host path /var/run/docker.sock "
        "(volumes[0]); refusing to deploy it; nothing was changed."
    )
    assert "publisher must remove that setting" in caught.value.fix
    assert caught.value.app == "X"
    [finding] = caught.value.findings
    assert (finding.subject, finding.setting) == ("service 'app'", "volumes[0]")


# ---- one refusal per setting and syntax: (service settings, top-level sections, message)

REFUSED: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("privileged", {"privileged": True}, {}, r"runs privileged \(privileged: true\)"),
    ("privileged as text", {"privileged": "yes"}, {}, r"runs privileged"),
    ("engine API socket", {"use_api_socket": True}, {}, r"engine's API socket"),
    (
        "privileged hook",
        {"post_start": [{"command": "id", "privileged": True}]},
        {},
        r"lifecycle hook privileged \(post_start\[0\]\.privileged\)",
    ),
    ("provider", {"provider": {"type": "x"}}, {}, r"provider plugin on the host \(provider\)"),
    (
        "host network mode",
        {"network_mode": "host"},
        {},
        r"shares the host's network namespace \(network_mode: host\)",
    ),
    ("HOST spelled", {"network_mode": " HOST"}, {}, r"host's network namespace"),
    (
        "another container's network",
        {"network_mode": "container:sidecar"},
        {},
        r"network namespace of container:sidecar, outside the app \(network_mode\)",
    ),
    ("host PID", {"pid": "host"}, {}, r"host's PID namespace \(pid: host\)"),
    ("host IPC", {"ipc": "host"}, {}, r"host's IPC namespace \(ipc: host\)"),
    ("host UTS", {"uts": "host"}, {}, r"host's UTS namespace \(uts: host\)"),
    ("host users", {"userns_mode": "host"}, {}, r"host's user namespace \(userns_mode: host\)"),
    ("host cgroup", {"cgroup": "host"}, {}, r"host's cgroup namespace \(cgroup: host\)"),
    (
        "external network host",
        {"networks": ["host"]},
        {"networks": {"host": {"external": True}}},
        r"joins the host's network \(networks\[0\]; networks\.host\)",
    ),
    (
        "external network renamed host",
        {"networks": ["outside"]},
        {"networks": {"outside": {"external": True, "name": "host"}}},
        r"joins the host's network \(networks\[0\]; networks\.outside\)",
    ),
    (
        "old external syntax, networks as a mapping",
        {"networks": {"outside": {"aliases": ["a"]}}},
        {"networks": {"outside": {"external": {"name": "host"}}}},
        r"joins the host's network \(networks\.outside; networks\.outside\)",
    ),
    ("undefined network host", {"networks": ["host"]}, {}, r"joins the host's network"),
    (
        "host network driver",
        {"networks": ["lan"]},
        {"networks": {"lan": {"driver": "host"}}},
        r"joins the host's network",
    ),
    (
        "short bind, relative",
        {"volumes": ["./data:/srv"]},
        {},
        r"mounts the host path \./data \(volumes\[0\]\)",
    ),
    ("short bind, parent", {"volumes": ["../x:/srv"]}, {}, r"host path \.\./x \(volumes\[0\]\)"),
    ("short bind, home", {"volumes": ["~/x:/srv:ro"]}, {}, r"host path ~/x \(volumes\[0\]\)"),
    ("short bind, root", {"volumes": ["data:/d", "/:/host:ro"]}, {}, r"path / \(volumes\[1\]\)"),
    (
        "a device without a type",
        {"volumes": ["data:/srv"]},
        {"volumes": {"data": {"driver_opts": {"device": "/srv"}}}},
        r"volume 'data', which mounts /srv on the host",
    ),
    ("short bind, drive", {"volumes": ["C:\\x:/srv"]}, {}, r"host path C:\\x:/srv"),
    (
        "long bind",
        {"volumes": [{"type": "bind", "source": "/etc", "target": "/etc", "read_only": True}]},
        {},
        r"mounts the host path /etc \(volumes\[0\]\)",
    ),
    (
        "long bind, type in capitals",
        {"volumes": [{"type": "BIND", "source": "/etc", "target": "/x"}]},
        {},
        r"host path /etc",
    ),
    (
        "long, no type, a path",
        {"volumes": [{"source": "/var/lib/docker", "target": "/x"}]},
        {},
        r"host path /var/lib/docker \(volumes\[0\]\)",
    ),
    (
        "long volume whose source is a path",
        {"volumes": [{"type": "volume", "source": "/srv", "target": "/x"}]},
        {},
        r"host path /srv",
    ),
    (
        "named pipe",
        {"volumes": [{"type": "npipe", "source": "\\\\.\\pipe\\docker_engine", "target": "/p"}]},
        {},
        r"host's named pipe .*docker_engine \(volumes\[0\]\)",
    ),
    (
        "cluster volume",
        {"volumes": [{"type": "cluster", "source": "csi", "target": "/x"}]},
        {},
        r"mount of type cluster, which is not allowed \(volumes\[0\]\)",
    ),
    (
        "local driver bind (type none)",
        {"volumes": ["data:/srv"]},
        {"volumes": {"data": {"driver_opts": {"type": "none", "o": "bind", "device": "/srv"}}}},
        r"mounts the volume 'data', which binds the host path /srv "
        r"\(volumes\[0\]; volumes\.data\.driver_opts\)",
    ),
    (
        "local driver rbind, long syntax",
        {"volumes": [{"type": "volume", "source": "data", "target": "/x"}]},
        {"volumes": {"data": {"driver": "local", "driver_opts": {"o": "rbind", "device": "/"}}}},
        r"volume 'data', which binds the host path /",
    ),
    (
        "tmpfs type that binds",
        {"volumes": ["data:/srv"]},
        {"volumes": {"data": {"driver_opts": {"type": "tmpfs", "o": "bind", "device": "/etc"}}}},
        r"binds the host path /etc",
    ),
    (
        "a host block device",
        {"volumes": ["data:/srv"]},
        {"volumes": {"data": {"driver_opts": {"type": "ext4", "device": "/dev/sda1"}}}},
        r"volume 'data', which mounts /dev/sda1 \(ext4\) on the host",
    ),
    (
        "a network share",
        {"volumes": ["data:/srv"]},
        {
            "volumes": {
                "data": {"driver_opts": {"type": "nfs", "o": "addr=10.0.0.1", "device": ":/x"}}
            }
        },
        r"mounts :/x \(nfs\) on the host",
    ),
    (
        "an external volume",
        {"volumes": ["data:/srv"]},
        {"volumes": {"data": {"external": True}}},
        r"volume 'data', which exists outside the app .*volumes\.data\.external\)",
    ),
    (
        "a volume named outside the stack",
        {"volumes": ["data:/srv"]},
        {"volumes": {"data": {"name": "other_db"}}},
        r"is the volume other_db outside the app's stack .*volumes\.data\.name\)",
    ),
    (
        "a volume plugin",
        {"volumes": ["data:/srv"]},
        {"volumes": {"data": {"driver": "local-persist", "driver_opts": {"mountpoint": "/"}}}},
        r"volume plugin local-persist",
    ),
    (
        "volumes of a container",
        {"volumes_from": ["container:admin"]},
        {},
        r"volumes of container:admin, outside the app \(volumes_from\[0\]\)",
    ),
    (
        "an env file",
        {"env_file": ["/etc/commonshelf/agent.env"]},
        {},
        r"reads the host file /etc/commonshelf/agent\.env into its environment \(env_file\[0\]\)",
    ),
    (
        "an env file, long syntax",
        {"env_file": [{"path": "../secrets/other/db_password", "required": False}]},
        {},
        r"host file \.\./secrets/other/db_password",
    ),
    ("SYS_ADMIN", {"cap_add": ["SYS_ADMIN"]}, {}, r"adds the capability SYS_ADMIN .*cap_add\[0\]"),
    ("NET_ADMIN", {"cap_add": ["CHOWN", "NET_ADMIN"]}, {}, r"NET_ADMIN .*\(cap_add\[1\]\)"),
    ("SYS_PTRACE", {"cap_add": ["sys_ptrace"]}, {}, r"capability sys_ptrace"),
    ("ALL", {"cap_add": ["ALL"]}, {}, r"capability ALL \(allowed: CHOWN, DAC_OVERRIDE"),
    ("CAP_ prefix", {"cap_add": ["CAP_SYS_MODULE"]}, {}, r"capability CAP_SYS_MODULE"),
    ("NET_RAW of the default set", {"cap_add": ["NET_RAW"]}, {}, r"capability NET_RAW"),
    (
        "a device",
        {"devices": ["/dev/sda:/dev/xvda:rwm"]},
        {},
        r"gets the host device /dev/sda \(devices\[0\]\)",
    ),
    (
        "a device cgroup rule",
        {"device_cgroup_rules": ["c 1:3 mr"]},
        {},
        r"host devices by the rule c 1:3 mr \(device_cgroup_rules\[0\]\)",
    ),
    ("GPUs", {"gpus": "all"}, {}, r"gets the host's GPUs \(gpus\)"),
    (
        "reserved devices",
        {"deploy": {"resources": {"reservations": {"devices": [{"capabilities": ["gpu"]}]}}}},
        {},
        r"reserves host devices \(deploy\.resources\.reservations\.devices\[0\]\)",
    ),
    (
        "seccomp unconfined",
        {"security_opt": ["seccomp:unconfined"]},
        {},
        r"disables the engine's confinement with seccomp:unconfined \(security_opt\[0\]\)",
    ),
    ("seccomp=", {"security_opt": ["seccomp=unconfined"]}, {}, r"disables .*seccomp=unconfined"),
    ("apparmor", {"security_opt": ["apparmor=unconfined"]}, {}, r"disables .*apparmor=unconfined"),
    ("apparmor:", {"security_opt": ["apparmor:unconfined"]}, {}, r"disables"),
    ("label disable", {"security_opt": ["label=disable"]}, {}, r"disables .*label=disable"),
    ("label:disable", {"security_opt": ["no-new-privileges", "label:disable"]}, {}, r"\[1\]"),
    ("system paths", {"security_opt": ["systempaths=unconfined"]}, {}, r"disables"),
    (
        "a host seccomp profile",
        {"security_opt": ["seccomp=/etc/permissive.json"]},
        {},
        r"replaces the engine's confinement with seccomp=/etc/permissive\.json",
    ),
    ("SELinux super-privileged", {"security_opt": ["label=type:spc_t"]}, {}, r"replaces"),
    (
        "cgroup parent",
        {"cgroup_parent": "system.slice"},
        {},
        r"puts its containers in the host's cgroup system\.slice \(cgroup_parent\)",
    ),
    (
        "a host sysctl",
        {"sysctls": {"kernel.core_pattern": "|/tmp/x"}},
        {},
        r"sets the kernel setting kernel\.core_pattern for the whole host \(sysctls\)",
    ),
    ("a host sysctl as a list", {"sysctls": ["kernel.sysrq=1"]}, {}, r"kernel\.sysrq"),
    ("a host sysctl with slashes", {"sysctls": ["vm/overcommit_memory=1"]}, {}, r"vm\.overcommit"),
]


@pytest.mark.parametrize(
    ("service", "top", "message"),
    [pytest.param(s, t, m, id=name) for name, s, t, m in REFUSED],
)
def test_a_setting_that_controls_the_host_is_refused(
    service: dict[str, Any], top: dict[str, Any], message: str
) -> None:
    said = _refusal(_app(service, **top))
    assert " service 'app': " in said
    assert re.search(message, said), said


@pytest.mark.parametrize(
    ("kind", "definition", "message"),
    [
        ("secrets", {"file": "/etc/shadow"}, r"secret 'key': reads the host file /etc/shadow"),
        (
            "secrets",
            {"environment": "COMMONSHELF_KEY_ROOT"},
            r"secret 'key': reads the agent's environment variable COMMONSHELF_KEY_ROOT "
            r"\(secrets\.key\.environment\)",
        ),
        ("configs", {"file": "../tuf/pinned-root.json"}, r"config 'key': .*\(configs\.key\.file\)"),
    ],
)
def test_secrets_and_configs_read_from_the_agents_host_are_refused(
    kind: str, definition: dict[str, Any], message: str
) -> None:
    said = _refusal(_app({kind: ["key"]}, **{kind: {"key": definition}}))
    assert re.search(message, said), said


# ---- what stays allowed

ALLOWED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "published ports in host mode",
        {"ports": [{"target": 22000, "published": 22000, "protocol": "tcp", "mode": "host"}]},
        {},
    ),
    (
        "tmpfs, both syntaxes",
        {"tmpfs": ["/run"], "volumes": [{"type": "tmpfs", "target": "/t"}]},
        {},
    ),
    (
        "named and anonymous volumes",
        {
            "volumes": [
                "data:/srv",
                "cache:/cache:ro,nocopy",
                "/scratch",
                {"type": "volume", "source": "data", "target": "/x", "volume": {"nocopy": True}},
                {"type": "volume", "target": "/anon"},
                {"type": "volume", "source": "", "target": "/anon2"},
            ]
        },
        {"volumes": {"data": None, "cache": {"driver": "local", "labels": {"a": "b"}}}},
    ),
    (
        "a tmpfs-backed local volume",
        {"volumes": ["fast:/fast"]},
        {
            "volumes": {
                "fast": {"driver_opts": {"type": "tmpfs", "device": "tmpfs", "o": "size=64m,uid=1"}}
            }
        },
    ),
    (
        "capabilities from the allow-list",
        {"cap_drop": ["ALL"], "cap_add": ["CHOWN", "CAP_SETUID", "setgid", "NET_BIND_SERVICE"]},
        {},
    ),
    ("no new privileges", {"security_opt": ["no-new-privileges", "no-new-privileges:true"]}, {}),
    (
        "namespaced sysctls",
        {"sysctls": {"net.core.somaxconn": 1024, "kernel.shmmax": 1, "fs.mqueue.msg_max": 10}},
        {},
    ),
    ("own namespaces", {"network_mode": "none", "pid": "service:db", "ipc": "shareable"}, {}),
    ("false flags", {"privileged": False, "use_api_socket": "false", "gpus": []}, {}),
    (
        "the stack's networks and the apps network",
        {"networks": {"back": None, "commonshelf-apps": None}},
        {"networks": {"back": {}, "commonshelf-apps": {"external": True, "name": "g-apps"}}},
    ),
    (
        "external secrets and inline configs",
        {"secrets": ["db_password"], "configs": ["conf"], "volumes_from": ["db"]},
        {
            "secrets": {"db_password": {"external": True, "name": "g-x_db_password"}},
            "configs": {"conf": {"content": "x = 1"}},
        },
    ),
]


@pytest.mark.parametrize(
    ("service", "top"), [pytest.param(s, t, id=name) for name, s, t in ALLOWED]
)
def test_what_stays_inside_the_container_is_allowed(
    service: dict[str, Any], top: dict[str, Any]
) -> None:
    compose = _app(service, **top)
    assert host_control(compose) == []
    refuse_host_control("fine", compose)  # does not raise


def test_every_bad_setting_is_found_and_the_first_is_named() -> None:
    compose = _app(
        {"privileged": True, "pid": "host", "volumes": ["/:/host"]},
        secrets={"k": {"file": "/etc/shadow"}},
    )
    compose["services"]["db"] = {"image": PINNED, "cap_add": ["SYS_ADMIN"]}
    with pytest.raises(HostControlError) as caught:
        refuse_host_control("wiki", compose)
    assert [f.setting for f in caught.value.findings] == [
        "privileged: true",
        "pid: host",
        "volumes[0]",
        "cap_add[0]",
        "secrets.k.file",
    ]
    assert str(caught.value).startswith(
        "catalog app wiki, service 'app': runs privileged (privileged: true), "
        "and 4 more settings like it; refusing to deploy it"
    )


def test_hostile_text_is_shown_on_one_short_line() -> None:
    name = "app\nFix: nothing to see"
    compose = {"services": {name: {"volumes": ["/" + "x" * 500 + ":/x"]}}}
    said = _refusal(compose)
    assert "service 'app?Fix: nothing to see'" in said
    assert len(said) < 700


@pytest.mark.parametrize(
    ("compose", "subject"),
    [
        (["services"], "the compose file: is not a mapping (top)"),
        ({"services": ["app"]}, "the compose file: is not a mapping (services)"),
        ({"services": {"app": "image: x"}}, "service 'app': is not a mapping (services)"),
        (
            {"services": {"app": {"volumes": ["data:/d"]}}, "volumes": ["data"]},
            "top-level volumes cannot be read (volumes[0])",
        ),
        ({"services": {"app": {"volumes": [7]}}}, "has a mount the agent cannot read (7)"),
        ({"services": {"app": {"pid": 1}}}, "PID namespace of 1, outside the app (pid)"),
        (
            {"services": {"app": {"networks": [{"host": None}]}}},
            "names a network the agent cannot read ({'host': None}) (networks[0])",
        ),
    ],
)
def test_what_cannot_be_read_is_refused_not_skipped(compose: Any, subject: str) -> None:
    assert subject in _refusal(compose)


# ---- the shelf's own recipes


def _bundled() -> list[Path]:
    return sorted(RECIPES.glob("*/compose.yml"))


def test_there_are_nine_bundled_recipes() -> None:
    assert len(_bundled()) == 9


@pytest.mark.parametrize("path", _bundled(), ids=lambda p: p.parent.name)
def test_a_bundled_recipe_passes_as_published_and_as_rendered(path: Path) -> None:
    compose = yaml.safe_load(path.read_text(encoding="utf-8"))
    app = path.parent.name
    assert host_control(compose) == []
    refuse_host_control(app, compose)
    runtime = Runtime(
        compose=f"apps/{app}/1.0.0+1/compose.yml",
        services={name: ServiceImage(image=PINNED, digest=DIGEST) for name in compose["services"]},
        main=MainService(service="app", port=8080, health="/"),
        secrets={name: SecretSpec(description=name) for name in compose.get("secrets") or {}},
    )
    config = InstallationConfig(repository="r", namespace="g-", host_ports={5222: 15222})
    rendered = render_app(copy.deepcopy(compose), runtime, config, app)
    assert host_control(rendered) == []


def test_the_proxy_stack_would_be_refused_so_it_is_not_checked(tmp_path: Path) -> None:
    """render_proxy binds the installation's routes folder: that is the platform's own stack,
    which the deployer does not pass through the guard (app stacks only)."""
    compose: dict[str, Any] = {
        "services": {"proxy": {"image": "p"}},
        "networks": {"apps": {"external": True, "name": "commonshelf-apps"}},
    }
    rendered = render_proxy(compose, PINNED, CONFIG, tmp_path / "routes")
    assert [f.setting for f in host_control(rendered)] == ["volumes[0]"]


def test_the_allow_list_is_a_subset_of_dockers_default_capabilities() -> None:
    default = {
        "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
    }  # fmt: skip
    assert default >= ALLOWED_CAPABILITIES
    assert {"NET_RAW", "MKNOD", "SETPCAP", "SETFCAP"}.isdisjoint(ALLOWED_CAPABILITIES)
