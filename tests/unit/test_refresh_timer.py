"""The publisher's refresh timer: its units rendered for one repository folder, verified by
systemd's own checker where it is installed, enabled through a fake systemctl, or a sentence
saying how to schedule the refresh where systemd does not run; and the demo's hint naming
when its catalogue's timestamp lapses, read from a really signed repository."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Timestamp

from commonshelf.catalogue.expiry import Expiry
from commonshelf.catalogue.keys import load_or_create_keys
from commonshelf.catalogue.refresh_timer import (
    SERVICE,
    SERVICE_TEMPLATE,
    TIMER,
    TIMER_TEMPLATE,
    RefreshTimerError,
    demo_hint,
    enable_refresh_timer,
    render_units,
)
from commonshelf.catalogue.signing import Publisher
from commonshelf.platform.settings import Settings

from ..systemd_fakes import assert_systemd_accepts, fake_systemctl, needs_systemd_analyze

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "systemd"
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _repository(tmp_path: Path) -> Path:
    """A stand-in for a Commonshelf checkout: a folder with an executable `shelf` script."""
    root = tmp_path / "shelf-checkout"
    root.mkdir()
    shelf = root / "shelf"
    shelf.write_text("#!/bin/sh\nexit 0\n")
    shelf.chmod(0o755)
    return root


def _booted(tmp_path: Path) -> Path:
    marker = tmp_path / "run-systemd-system"
    marker.mkdir()
    return marker


def test_contrib_units_are_the_templates_refresh_installs() -> None:
    assert (CONTRIB / SERVICE).read_text() == SERVICE_TEMPLATE
    assert (CONTRIB / TIMER).read_text() == TIMER_TEMPLATE


def test_rendering_fills_the_repository_folder(tmp_path: Path) -> None:
    root = tmp_path / "commonshelf"
    units = render_units(root)
    service, timer = units[SERVICE], units[TIMER]
    assert "@" not in service and "@" not in timer
    assert f"WorkingDirectory={root}\n" in service
    assert f"ExecStart={root}/shelf refresh\n" in service
    assert "Type=oneshot\n" in service and "TimeoutStartSec=15min\n" in service
    assert "NO_COLOR=1 TERM=dumb" in service and "PYTHONUNBUFFERED=1" in service
    # refresh writes public/ inside the checkout: no read-only file system without a way out
    assert "ProtectSystem=strict" not in service
    assert "OnUnitActiveSec=6h\n" in timer and "WantedBy=timers.target\n" in timer
    assert "Unit=commonshelf-refresh.service\n" in timer


@pytest.mark.parametrize("root", ["relative/checkout", "/srv/my shelf", "/srv/50%", "/a/$HOME"])
def test_folders_systemd_would_misread_are_refused_in_one_line(root: str) -> None:
    with pytest.raises(RefreshTimerError, match=r"cannot go into a systemd unit") as caught:
        render_units(Path(root))
    assert "\n" not in str(caught.value) and caught.value.fix


def test_a_folder_without_the_shelf_script_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    units_dir = tmp_path / "units"
    systemctl, calls = fake_systemctl(tmp_path)
    with pytest.raises(RefreshTimerError, match=r"has no `shelf` script") as caught:
        enable_refresh_timer(
            tmp_path,
            unit_dir=units_dir,
            systemctl=str(systemctl),
            systemd_runs=_booted(tmp_path),
        )
    assert "\n" not in str(caught.value) and "COMMONSHELF_ROOT" in caught.value.fix
    assert not units_dir.exists() and not calls.exists()


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_the_rendered_units(tmp_path: Path) -> None:
    assert_systemd_accepts(render_units(_repository(tmp_path)), tmp_path / "units")


def test_without_systemd_nothing_is_installed_and_the_sentence_says_how(tmp_path: Path) -> None:
    root = _repository(tmp_path)
    units_dir = tmp_path / "units"
    systemctl, calls = fake_systemctl(tmp_path)
    said = enable_refresh_timer(
        root,
        unit_dir=units_dir,
        systemctl=str(systemctl),
        systemd_runs=tmp_path / "no-systemd",
    )
    command = f"cd {root} && ./shelf refresh"
    assert said.startswith("systemd does not run here, so no timer was installed")
    assert re.search(rf"`([0-9]|[1-5][0-9]) \*/6 \* \* \* {re.escape(command)}`", said)
    assert f"`cd {root} && while sleep 21600; do ./shelf refresh; done`" in said
    assert "\n" not in said
    assert not units_dir.exists() and not calls.exists()


def test_with_systemd_the_units_are_written_and_the_timer_enabled(tmp_path: Path) -> None:
    root = _repository(tmp_path)
    units_dir = tmp_path / "etc-systemd-system"
    units_dir.mkdir()
    systemctl, calls = fake_systemctl(tmp_path)
    said = enable_refresh_timer(
        root, unit_dir=units_dir, systemctl=str(systemctl), systemd_runs=_booted(tmp_path)
    )
    assert calls.read_text().splitlines() == [
        "daemon-reload",
        "enable --now commonshelf-refresh.timer",
    ]
    assert sorted(p.name for p in units_dir.iterdir()) == [SERVICE, TIMER]  # no temp files left
    assert (units_dir / SERVICE).read_text() == render_units(root)[SERVICE]
    assert (units_dir / TIMER).stat().st_mode & 0o777 == 0o644
    assert said.startswith(f"Installed {SERVICE} and {TIMER} in {units_dir}")
    assert f"`{root}/shelf refresh`" in said and "\n" not in said


def test_an_unwritable_unit_folder_is_one_line_saying_to_run_as_root(tmp_path: Path) -> None:
    root = _repository(tmp_path)
    not_a_folder = tmp_path / "units"
    not_a_folder.write_text("a file where the unit folder should be")
    systemctl, calls = fake_systemctl(tmp_path)
    with pytest.raises(RefreshTimerError, match=r"Cannot write the systemd units into") as caught:
        enable_refresh_timer(
            root,
            unit_dir=not_a_folder,
            systemctl=str(systemctl),
            systemd_runs=_booted(tmp_path),
        )
    assert "\n" not in str(caught.value)
    assert caught.value.fix == "run `./shelf refresh --enable-timer` as root."
    assert not calls.exists()


def _published(root: Path) -> Path:
    """Sign a one-target repository into root/public with development keys, at T0."""
    keys, _made = load_or_create_keys(root / "keys", env={})
    publisher = Publisher(root / "public", keys, expiry=Expiry(), clock=lambda: T0)
    publisher.publish({"catalog.json": b"{}"})
    return root / "public" / "metadata" / "timestamp.json"


def test_the_demo_hint_names_when_the_signed_timestamp_lapses(tmp_path: Path) -> None:
    timestamp = _published(tmp_path)
    expires = Metadata[Timestamp].from_file(str(timestamp)).signed.expires
    assert expires == T0 + timedelta(days=1)  # the default lifetime, from a real signature
    hint = demo_hint(Settings.load(root=tmp_path, env={}))
    assert "valid until 2026-11-28 09:00 UTC" in hint
    assert "`./shelf refresh --enable-timer`" in hint and "\n" not in hint


def test_the_demo_hint_is_silent_for_a_published_repository_or_none_yet(tmp_path: Path) -> None:
    assert demo_hint(Settings.load(root=tmp_path, env={})) == ""  # nothing signed yet
    _published(tmp_path)
    env = {"COMMONSHELF_PUBLISHED_URL": "https://catalogue.example/"}
    assert demo_hint(Settings.load(root=tmp_path, env=env)) == ""


def test_an_unreadable_timestamp_gets_one_line_not_a_traceback(tmp_path: Path) -> None:
    timestamp = _published(tmp_path)
    timestamp.write_text("{not json")
    hint = demo_hint(Settings.load(root=tmp_path, env={}))
    assert hint.startswith(f"{timestamp} cannot be read") and "\n" not in hint
