"""Keep the catalogue signed unattended: a systemd timer running `./shelf refresh`, or a
sentence saying how otherwise.

The publisher's twin of the agent's timer (installation/timer.py): the units are
`contrib/systemd/commonshelf-refresh.*` with the repository's folder filled in, a unit test
keeps the two identical, and writing and enabling them is platform/systemd.py. The
timestamp lives a day, so without a schedule the local demo's installation refuses the
catalogue a day after the last release or refresh; `demo_hint` says when.
"""

from __future__ import annotations

import random
import shlex
from pathlib import Path

from tuf.api.metadata import Metadata, Timestamp
from tuf.api.serialization import DeserializationError

from commonshelf.platform.settings import Settings
from commonshelf.platform.systemd import (
    SYSTEMD_RUNS,
    UNIT_DIR,
    SystemdError,
    booted,
    install_units,
    plain_path,
)

SERVICE = "commonshelf-refresh.service"
TIMER = "commonshelf-refresh.timer"

SERVICE_TEMPLATE = """\
# Keeps a Commonshelf catalogue signed: one `./shelf refresh` (re-signs the TUF timestamp,
# and whatever else is due) in the repository's folder, started by commonshelf-refresh.timer.
# `./shelf refresh --enable-timer` installs this file with its placeholder filled in: the
# repository's folder (a packager may substitute it with sed instead). Settings such as
# COMMONSHELF_PUBLISHED_URL or the keys go in a drop-in: `systemctl edit commonshelf-refresh`.
[Unit]
Description=Commonshelf publisher: re-sign the catalogue's timestamp
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
WorkingDirectory=@ROOT@
ExecStart=@ROOT@/shelf refresh
# plain lines to stdout/stderr, which journald keeps: `journalctl -u commonshelf-refresh`
Environment=PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 NO_COLOR=1 TERM=dumb
# signing takes seconds; downloading the published repository or a first `./shelf` making
# .venv takes longer, but a hung run must not block the timer
TimeoutStartSec=15min
Nice=10
# Hardening, modest on purpose: refresh writes public/ (and ./shelf may write .venv/),
# reads keys/, and downloads the published repository when COMMONSHELF_PUBLISHED_URL is
# set, so the file system and the network stay as they are.
PrivateTmp=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
"""

TIMER_TEMPLATE = """\
# Starts commonshelf-refresh.service 2 minutes after boot, then 6 hours after each run
# started, each time up to 10 minutes later at random. Why 6 hours: the timestamp lives
# 1 day, so after a good run the next three (about 6, 12 and 18 hours later) can all fail
# or be missed and it is still valid; that leaves time to notice. (Monotonic timers catch
# up after downtime through OnBootSec, so Persistent=, which only applies to OnCalendar=,
# is not needed.)
[Unit]
Description=Re-sign the Commonshelf catalogue's timestamp every 6 hours

[Timer]
OnBootSec=2min
OnUnitActiveSec=6h
RandomizedDelaySec=10min
Unit=commonshelf-refresh.service

[Install]
WantedBy=timers.target
"""


class RefreshTimerError(SystemdError):
    """The refresh timer's units could not be rendered, written or enabled."""


def render_units(root: Path) -> dict[str, str]:
    """The unit files' names and texts for the repository in `root`."""
    folder = plain_path(root, "repository folder", error=RefreshTimerError)
    return {SERVICE: SERVICE_TEMPLATE.replace("@ROOT@", folder), TIMER: TIMER_TEMPLATE}


def other_ways(root: Path) -> str:
    """How to schedule the refresh where there is no systemd: a cron line or a shell loop."""
    minute = random.randrange(60)  # spread publishers over the hour, as the timer does
    here = shlex.quote(str(root))
    return (
        "systemd does not run here, so no timer was installed; re-sign the catalogue another "
        f"way at least twice a day, e.g. the crontab line "
        f"`{minute} */6 * * * cd {here} && ./shelf refresh` or "
        f"`cd {here} && while sleep 21600; do ./shelf refresh; done` under a supervisor."
    )


def enable_refresh_timer(
    root: Path,
    *,
    unit_dir: Path = UNIT_DIR,
    systemctl: str = "systemctl",
    systemd_runs: Path = SYSTEMD_RUNS,
) -> str:
    """Install and start the refresh timer where systemd runs; one sentence saying what was
    done (or, without systemd, how to schedule the refresh otherwise)."""
    root = root.absolute()
    shelf = root / "shelf"
    if not shelf.is_file():  # a cron line or a timer would then fail every 6 hours
        raise RefreshTimerError(
            f"{root} has no `shelf` script, so a scheduled `./shelf refresh` there would fail.",
            "run it from the Commonshelf repository's folder, or point COMMONSHELF_ROOT at it.",
        )
    if not booted(systemd_runs):
        return other_ways(root)
    install_units(
        render_units(root),
        TIMER,
        fix_hint="run `./shelf refresh --enable-timer` as root.",
        unit_dir=unit_dir,
        systemctl=systemctl,
        error=RefreshTimerError,
    )
    return (
        f"Installed {SERVICE} and {TIMER} in {unit_dir} and enabled the timer: "
        f"`{shelf} refresh` runs 2 minutes after boot and then every 6 hours "
        f"(up to 10 minutes later at random); its log is `journalctl -u {SERVICE}`."
    )


def demo_hint(settings: Settings) -> str:
    """For the local demo (no published repository configured): until when its catalogue's
    timestamp is valid and how to keep it so; "" when there is nothing to say."""
    if settings.published_source is not None:
        return ""  # a real publisher schedules `refresh` in CI (ci/README.md)
    path = settings.public_dir / "metadata" / "timestamp.json"
    try:
        expires = Metadata[Timestamp].from_bytes(path.read_bytes()).signed.expires
    except FileNotFoundError:
        return ""
    except (OSError, DeserializationError, ValueError, TypeError) as exc:
        return f"{path} cannot be read ({exc}); `./shelf refresh` says what is wrong with it."
    return (
        f"The local catalogue's timestamp is valid until {expires:%Y-%m-%d %H:%M} UTC, after "
        "which the local installation refuses it: `./shelf refresh --enable-timer` keeps it "
        "signed (or run `./shelf pipeline` again before then)."
    )
