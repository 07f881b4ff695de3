"""The unattended loop's systemd units: rendered for one installation, verified by systemd's
own checker where it is installed, enabled through systemctl, or a sentence saying how to run
the loop where systemd does not run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from commonshelf.installation.timer import (
    SERVICE,
    SERVICE_TEMPLATE,
    TIMER,
    TIMER_TEMPLATE,
    TimerError,
    enable_timer,
    render_units,
)

from ..systemd_fakes import assert_systemd_accepts, fake_systemctl, needs_systemd_analyze

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "systemd"


def _command(tmp_path: Path) -> Path:
    """A stand-in for the installed `commonshelf` command (systemd checks it is executable)."""
    command = tmp_path / "venv" / "bin" / "commonshelf"
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\nexit 0\n")
    command.chmod(0o755)
    return command


def test_contrib_units_are_the_templates_the_agent_installs() -> None:
    assert (CONTRIB / SERVICE).read_text() == SERVICE_TEMPLATE
    assert (CONTRIB / TIMER).read_text() == TIMER_TEMPLATE


def test_rendering_fills_every_placeholder(tmp_path: Path) -> None:
    home = tmp_path / "agent"
    units = render_units(home, Path("/opt/commonshelf/bin/commonshelf"))
    service, timer = units[SERVICE], units[TIMER]
    assert "@" not in service and "@" not in timer
    assert f"ExecStart=/opt/commonshelf/bin/commonshelf --home {home} run\n" in service
    assert f"ReadWritePaths={home}\n" in service
    assert "Type=oneshot\n" in service and "ProtectSystem=strict\n" in service
    assert "RandomizedDelaySec=15min\n" in timer and "WantedBy=timers.target\n" in timer


@pytest.mark.parametrize("home", ["relative/home", "/var/lib/my agent", "/srv/50%", "/a/$HOME"])
def test_paths_systemd_would_misread_are_refused_in_one_line(home: str) -> None:
    with pytest.raises(TimerError, match=r"cannot go into a systemd unit") as caught:
        render_units(Path(home), Path("/usr/bin/commonshelf"))
    assert "\n" not in str(caught.value) and caught.value.fix


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_the_rendered_units(tmp_path: Path) -> None:
    home = tmp_path / "agent"
    home.mkdir()
    assert_systemd_accepts(render_units(home, _command(tmp_path)), tmp_path / "units")


def test_without_systemd_nothing_is_installed_and_the_sentence_says_how(tmp_path: Path) -> None:
    units_dir = tmp_path / "units"
    systemctl, calls = fake_systemctl(tmp_path)
    said = enable_timer(
        tmp_path / "agent",
        Path("/usr/local/bin/commonshelf"),
        unit_dir=units_dir,
        systemctl=str(systemctl),
        systemd_runs=tmp_path / "no-systemd",
    )
    command = f"/usr/local/bin/commonshelf --home {tmp_path / 'agent'} run"
    assert said.startswith("systemd does not run here, so no timer was installed")
    assert re.search(rf"`([0-9]|[1-5][0-9]) \* \* \* \* {re.escape(command)}`", said)
    assert f"`while sleep 3600; do {command}; done`" in said
    assert "\n" not in said
    assert not units_dir.exists() and not calls.exists()


def test_with_systemd_the_units_are_written_and_the_timer_enabled(tmp_path: Path) -> None:
    home = tmp_path / "agent"
    home.mkdir()
    booted = tmp_path / "run-systemd-system"
    booted.mkdir()
    units_dir = tmp_path / "etc-systemd-system"
    units_dir.mkdir()
    command = _command(tmp_path)
    systemctl, calls = fake_systemctl(tmp_path)
    said = enable_timer(
        home, command, unit_dir=units_dir, systemctl=str(systemctl), systemd_runs=booted
    )
    assert calls.read_text().splitlines() == ["daemon-reload", "enable --now commonshelf.timer"]
    assert sorted(p.name for p in units_dir.iterdir()) == [SERVICE, TIMER]  # no temp files left
    assert (units_dir / SERVICE).read_text() == render_units(home, command)[SERVICE]
    assert (units_dir / SERVICE).stat().st_mode & 0o777 == 0o644
    assert said.startswith(f"Installed {SERVICE} and {TIMER} in {units_dir}")
    assert f"`{command} --home {home} run`" in said and "\n" not in said


def test_a_failing_systemctl_is_one_line_with_its_words(tmp_path: Path) -> None:
    home = tmp_path / "agent"
    home.mkdir()
    booted = tmp_path / "booted"
    booted.mkdir()
    systemctl, _ = fake_systemctl(tmp_path, code=1)
    said = r"^`systemctl enable --now commonshelf.timer` failed: Failed to enable unit: commonshelf"
    with pytest.raises(TimerError, match=said) as caught:
        enable_timer(
            home,
            _command(tmp_path),
            unit_dir=tmp_path / "units",
            systemctl=str(systemctl),
            systemd_runs=booted,
        )
    assert "\n" not in str(caught.value) and "journalctl" in caught.value.fix


def test_a_missing_command_or_home_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    booted = tmp_path / "booted"
    booted.mkdir()
    units_dir = tmp_path / "units"
    systemctl, calls = fake_systemctl(tmp_path)
    with pytest.raises(TimerError, match=r"does not exist, so a timer running it would fail"):
        enable_timer(
            tmp_path,
            tmp_path / "nowhere" / "commonshelf",
            unit_dir=units_dir,
            systemctl=str(systemctl),
            systemd_runs=booted,
        )
    with pytest.raises(TimerError, match=r"The installation folder .* does not exist"):
        enable_timer(
            tmp_path / "no-home",
            _command(tmp_path),
            unit_dir=units_dir,
            systemctl=str(systemctl),
            systemd_runs=booted,
        )
    assert not units_dir.exists() and not calls.exists()


def test_an_unwritable_unit_folder_says_to_run_as_root(tmp_path: Path) -> None:
    home = tmp_path / "agent"
    home.mkdir()
    booted = tmp_path / "booted"
    booted.mkdir()
    not_a_folder = tmp_path / "units"
    not_a_folder.write_text("a file where the unit folder should be")
    systemctl, calls = fake_systemctl(tmp_path)
    with pytest.raises(TimerError, match=r"Cannot write the systemd units into") as caught:
        enable_timer(
            home,
            _command(tmp_path),
            unit_dir=not_a_folder,
            systemctl=str(systemctl),
            systemd_runs=booted,
        )
    assert "as root" in caught.value.fix and not calls.exists()
