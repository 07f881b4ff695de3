"""Run the agent unattended: a systemd service and timer, or a sentence saying how otherwise.

The units are `contrib/systemd/` with the installed command and the installation's home
filled in. Their text lives here too, because an installed agent has no checkout to read
`contrib/` from; a unit test keeps the two identical. Where systemd is not PID 1 (a
container, a machine without it) nothing is installed and the caller is told how to run
the loop with cron or a shell instead. Writing and enabling units is platform/systemd.py,
shared with the publisher's refresh timer (catalogue/refresh_timer.py).
"""

from __future__ import annotations

import random
from pathlib import Path

from commonshelf.platform.systemd import (
    SYSTEMD_RUNS,
    UNIT_DIR,
    SystemdError,
    booted,
    install_units,
    plain_path,
)

__all__ = [
    "SERVICE",
    "SERVICE_TEMPLATE",
    "SYSTEMD_RUNS",
    "TIMER",
    "TIMER_TEMPLATE",
    "UNIT_DIR",
    "TimerError",
    "enable_timer",
    "other_ways",
    "render_units",
]

SERVICE = "commonshelf.service"
TIMER = "commonshelf.timer"

SERVICE_TEMPLATE = """\
# Commonshelf's unattended loop: one `commonshelf run` (a poll, then whatever each app's
# update policy allows), started by commonshelf.timer. `commonshelf init --enable-timer`
# installs this file with its two placeholders filled in: the installed command and the
# installation's folder (a packager may substitute them with sed instead).
[Unit]
Description=Commonshelf agent: apply vetted app updates by policy
After=network-online.target docker.service
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=@COMMONSHELF@ --home @HOME@ run
# plain lines to stdout/stderr, which journald keeps: `journalctl -u commonshelf`
Environment=PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 NO_COLOR=1 TERM=dumb
# an update waits for health checks and backs up data; a hung run must not block the timer
TimeoutStartSec=4h
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
# Hardening. The agent writes only its home; images, containers and volumes are written
# by the Docker engine, which it reaches through /run/docker.sock (connecting to a socket
# works on a read-only mount), so the rest of the system can be read-only.
ProtectSystem=strict
ReadWritePaths=@HOME@
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
"""

TIMER_TEMPLATE = """\
# Starts commonshelf.service 5 minutes after boot, then an hour after each run started,
# each time up to 15 minutes later at random so installations do not poll the catalogue
# at the same moment. (Monotonic timers catch up after downtime through OnBootSec, so
# Persistent=, which only applies to OnCalendar=, is not needed.)
[Unit]
Description=Run the Commonshelf agent about every hour

[Timer]
OnBootSec=5min
OnUnitActiveSec=1h
RandomizedDelaySec=15min
Unit=commonshelf.service

[Install]
WantedBy=timers.target
"""


class TimerError(SystemdError):
    """The agent's units could not be rendered, written or enabled."""


def render_units(home: Path, executable: Path) -> dict[str, str]:
    """The unit files' names and texts for this installation's home and command."""
    command = plain_path(executable, "command", error=TimerError)
    folder = plain_path(home, "installation folder", error=TimerError)
    service = SERVICE_TEMPLATE.replace("@COMMONSHELF@", command).replace("@HOME@", folder)
    return {SERVICE: service, TIMER: TIMER_TEMPLATE}


def other_ways(home: Path, executable: Path) -> str:
    """How to run the loop where there is no systemd: a cron line or a shell loop."""
    command = f"{executable} --home {home} run"
    minute = random.randrange(60)  # spread installations over the hour, as the timer does
    return (
        "systemd does not run here, so no timer was installed; run the loop another way, "
        f"e.g. the crontab line `{minute} * * * * {command}` or "
        f"`while sleep 3600; do {command}; done` under a supervisor."
    )


def enable_timer(
    home: Path,
    executable: Path,
    *,
    unit_dir: Path = UNIT_DIR,
    systemctl: str = "systemctl",
    systemd_runs: Path = SYSTEMD_RUNS,
) -> str:
    """Install and start the timer where systemd runs; one sentence saying what was done
    (or, without systemd, how to run the loop otherwise)."""
    home, executable = home.absolute(), executable.absolute()
    if not booted(systemd_runs):
        return other_ways(home, executable)
    if not executable.is_file():
        raise TimerError(
            f"{executable} does not exist, so a timer running it would fail every hour.",
            "pass the installed `commonshelf` command (`command -v commonshelf`).",
        )
    if not home.is_dir():  # systemd refuses to start a unit whose ReadWritePaths is missing
        raise TimerError(
            f"The installation folder {home} does not exist.",
            "run `commonshelf init` first; it creates the folder.",
        )
    install_units(
        render_units(home, executable),
        TIMER,
        fix_hint="run `commonshelf init --enable-timer` as root.",
        unit_dir=unit_dir,
        systemctl=systemctl,
        error=TimerError,
    )
    return (
        f"Installed {SERVICE} and {TIMER} in {unit_dir} and enabled the timer: "
        f"`{executable} --home {home} run` runs 5 minutes after boot and then hourly "
        f"(up to 15 minutes later at random); its log is `journalctl -u {SERVICE}`."
    )
