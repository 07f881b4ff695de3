"""What an installation admits: checks made before anything is deployed.

Each raises a DeployError naming the app and what to do, so a version this machine
cannot or must not run is refused while the running version is still untouched.
"""

from __future__ import annotations

import platform

from commonshelf.catalogue.contract import Runtime
from commonshelf.platform.errors import DeployError


def host_architecture() -> str:
    """This machine's architecture in the names recipes declare (amd64, arm64)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def check_architecture(app: str, version: str, runtime: Runtime) -> None:
    host = host_architecture()
    if host not in runtime.architectures:
        raise DeployError(
            f"{app} {version} runs on {', '.join(runtime.architectures)}, not on this "
            f"{host} machine; nothing was changed.",
            "pick another app, or run it on a machine of a supported architecture.",
        )


def validated_settings(app: str, runtime: Runtime, given: dict[str, str]) -> dict[str, str]:
    """The operator's settings, each known to the version and of its type, as text."""
    unknown = sorted(set(given) - set(runtime.settings))
    if unknown:
        known = ", ".join(sorted(runtime.settings)) or "none"
        raise DeployError(
            f"{app} has no setting {', '.join(unknown)} (settings: {known}).",
            f"see `commonshelf info {app}`, or drop the --set.",
        )
    return {
        name: runtime.settings[name].text(runtime.settings[name].parse(name, text))
        for name, text in sorted(given.items())
    }
