"""Install a systemd service and its timer: the part the agent's timer and the publisher's
refresh timer share.

Each caller renders its own units; this module checks that a path can go into a unit as it
is, writes the units atomically and enables the timer through systemctl. Whether systemd
runs at all is a separate question (`booted`), because a caller may have checks of
its own to make only where it does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.fsutil import write_text_atomic
from commonshelf.platform.proc import run

SYSTEMD_RUNS = Path("/run/systemd/system")  # exists only when systemd is the init system
UNIT_DIR = Path("/etc/systemd/system")
# systemd splits on spaces and expands `%` and `$`: paths are kept to characters that mean
# nothing to it, rather than quoted and escaped
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._+/@-]*")


class SystemdError(CommonshelfError):
    """Units could not be rendered, written or enabled."""


def booted(marker: Path = SYSTEMD_RUNS) -> bool:
    """Whether systemd is the init system: sd_booted(3)'s test, the folder it makes at boot
    (a container usually has none)."""
    return marker.is_dir()


def plain_path(path: Path, what: str, *, error: type[SystemdError] = SystemdError) -> str:
    """`path` as text fit for a unit file, or `error` saying why it is not."""
    text = str(path)
    if not _PLAIN_PATH.fullmatch(text):
        raise error(
            f"The {what} {text!r} cannot go into a systemd unit as it is (it must be absolute, "
            "of letters, digits and ._+-@/ only).",
            f"move the {what} to such a path, or write the units from contrib/systemd/ by hand.",
        )
    return text


def install_units(
    units: Mapping[str, str],
    timer: str,
    *,
    fix_hint: str,
    unit_dir: Path = UNIT_DIR,
    systemctl: str = "systemctl",
    error: type[SystemdError] = SystemdError,
) -> None:
    """Write `units` (file name -> text) into `unit_dir`, reload systemd and enable and start
    `timer`. `fix_hint` is the fix when the units cannot be written (typically: run the
    command that installs them as root)."""
    try:
        for name, text in units.items():
            write_text_atomic(unit_dir / name, text)
    except OSError as exc:
        raise error(
            f"Cannot write the systemd units into {unit_dir}: {exc.strerror or exc}.", fix_hint
        ) from None
    fix = f"see `journalctl -u {timer}`; the units are in {unit_dir}."
    for args in (["daemon-reload"], ["enable", "--now", timer]):
        said = f"`systemctl {' '.join(args)}`"
        run([systemctl, *args], what=said, fix=fix, error=error, timeout=60)
