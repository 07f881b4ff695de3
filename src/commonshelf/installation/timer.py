"""Run the agent unattended: a systemd service and timer, or a sentence saying how otherwise.

The units are `contrib/systemd/` with the installed command and the installation's home
filled in. Their text lives here too, because an installed agent has no checkout to read
`contrib/` from; a unit test keeps the two identical. Where systemd is not PID 1 (a
container, a machine without it) nothing is installed and the caller is told how to run
the loop with cron or a shell instead.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.fsutil import write_text_atomic
from commonshelf.platform.proc import run

SERVICE = "commonshelf.service"
TIMER = "commonshelf.timer"
SYSTEMD_RUNS = Path("/run/systemd/system")  # exists only when systemd is the init system
UNIT_DIR = Path("/etc/systemd/system")
# systemd splits on spaces and expands `%` and `$`: paths are kept to characters that mean
# nothing to it, rather than quoted and escaped
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._+/@-]*")

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


class TimerError(CommonshelfError):
    """The units could not be rendered, written or enabled."""


def _plain(path: Path, what: str) -> str:
    text = str(path)
    if not _PLAIN_PATH.fullmatch(text):
        raise TimerError(
            f"The {what} {text!r} cannot go into a systemd unit as it is (it must be absolute, "
            "of letters, digits and ._+-@/ only).",
            f"move the {what} to such a path, or write the units from contrib/systemd/ by hand.",
        )
    return text


def render_units(home: Path, executable: Path) -> dict[str, str]:
    """The unit files' names and texts for this installation's home and command."""
    command = _plain(executable, "command")
    folder = _plain(home, "installation folder")
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
    if not systemd_runs.is_dir():
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
    units = render_units(home, executable)
    try:
        for name, text in units.items():
            write_text_atomic(unit_dir / name, text)
    except OSError as exc:
        raise TimerError(
            f"Cannot write the systemd units into {unit_dir}: {exc.strerror or exc}.",
            "run `commonshelf init --enable-timer` as root.",
        ) from None
    fix = f"see `journalctl -u {TIMER}`; the units are in {unit_dir}."
    for args in (["daemon-reload"], ["enable", "--now", TIMER]):
        said = f"`systemctl {' '.join(args)}`"
        run([systemctl, *args], what=said, fix=fix, error=TimerError, timeout=60)
    return (
        f"Installed {SERVICE} and {TIMER} in {unit_dir} and enabled the timer: "
        f"`{executable} --home {home} run` runs 5 minutes after boot and then hourly "
        f"(up to 15 minutes later at random); its log is `journalctl -u {SERVICE}`."
    )
