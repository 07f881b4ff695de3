"""The Debian mirror is read from the host's apt sources; every host here is made up."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import pytest

from commonshelf.platform import apt_sources
from commonshelf.platform.apt_sources import AptSource, debian_mirror, host_mirror, pick_mirror
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.settings import Settings

MAIN = "http://mirror.invalid/debian"
SECURITY = "http://security.invalid/debian-security"

DEB822 = f"""\
# written by the installer
Types: deb
# a comment inside a stanza does not end it
URIs: {MAIN}/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {SECURITY}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


class Paths(TypedDict):
    sources_list: Path
    sources_dir: Path


def hosts(tmp_path: Path, *, deb822: str = "", one_line: str = "") -> Paths:
    """An apt configuration under tmp_path; returns the paths to pass on."""
    sources_dir = tmp_path / "sources.list.d"
    sources_dir.mkdir()
    if deb822:
        (sources_dir / "debian.sources").write_text(deb822)
    sources_list = tmp_path / "sources.list"
    if one_line:
        sources_list.write_text(one_line)
    return {"sources_list": sources_list, "sources_dir": sources_dir}


def test_deb822_main_archive_entry_is_the_mirror(tmp_path: Path) -> None:
    assert host_mirror(**hosts(tmp_path, deb822=DEB822)) == MAIN


def test_deb822_security_entry_first_is_still_skipped(tmp_path: Path) -> None:
    first, second = DEB822.split("\n\n")
    assert host_mirror(**hosts(tmp_path, deb822=f"{second}\n\n{first}")) == MAIN


def test_deb822_multi_line_fields_deb_src_and_disabled_stanzas(tmp_path: Path) -> None:
    text = f"""\
Types: deb-src
URIs: http://source-only.invalid/debian
Suites: bookworm

Types: deb
URIs: http://disabled.invalid/debian
Suites: bookworm
Enabled: no

types: deb deb-src
uris: {MAIN}
suites: bookworm
components: main
signed-by:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGPL0BUBEADmW5NdOOHwPIJlgPu6JDcKw
 -----END PGP PUBLIC KEY BLOCK-----
"""
    entries = apt_sources.parse_deb822(text, "x.sources")
    assert [e.uri for e in entries] == [MAIN]
    assert entries[0].origin == "x.sources:10"
    assert host_mirror(**hosts(tmp_path, deb822=text)) == MAIN


def test_one_line_format_with_options_and_comments(tmp_path: Path) -> None:
    text = f"""\
# deb http://commented.invalid/debian bookworm main
deb-src {MAIN} bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] {SECURITY} bookworm-security main
deb [ arch=amd64 signed-by=/etc/apt/keyrings/x.gpg ] {MAIN}/ bookworm main  # the archive
deb {MAIN} bookworm-updates main
"""
    entries = apt_sources.parse_one_line(text, "sources.list")
    assert [(e.uri, e.suites) for e in entries] == [
        (SECURITY, ("bookworm-security",)),
        (f"{MAIN}/", ("bookworm",)),
        (MAIN, ("bookworm-updates",)),
    ]
    assert host_mirror(**hosts(tmp_path, one_line=text)) == MAIN


def test_deb822_wins_over_one_line(tmp_path: Path) -> None:
    paths = hosts(tmp_path, deb822=DEB822, one_line="deb http://other.invalid/debian bookworm main")
    assert host_mirror(**paths) == MAIN


def test_one_line_used_when_deb822_names_no_mirror(tmp_path: Path) -> None:
    deb822 = f"Types: deb\nURIs: {SECURITY}\nSuites: bookworm-security\n"
    paths = hosts(tmp_path, deb822=deb822, one_line=f"deb {MAIN} bookworm main\n")
    assert host_mirror(**paths) == MAIN


def test_one_line_list_files_in_the_directory_count(tmp_path: Path) -> None:
    paths = hosts(tmp_path)
    (paths["sources_dir"] / "extra.list").write_text(f"deb {MAIN} bookworm main\n")
    assert host_mirror(**paths) == MAIN


def test_cdrom_and_file_uris_are_skipped(tmp_path: Path) -> None:
    text = f"""\
deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_]/ bookworm main
deb file:///srv/local-debian bookworm main
deb {MAIN} bookworm main
"""
    assert host_mirror(**hosts(tmp_path, one_line=text)) == MAIN


def test_base_suite_preferred_over_another_debian_release() -> None:
    sources = [
        AptSource("http://trixie.invalid/debian", ("trixie",), "a:1"),
        AptSource(MAIN, ("bookworm",), "a:5"),
    ]
    assert pick_mirror(sources) == MAIN
    assert pick_mirror(sources[:1]) == "http://trixie.invalid/debian"


def test_non_debian_suites_are_not_a_debian_mirror() -> None:
    ubuntu = [AptSource("http://archive.invalid/ubuntu", ("jammy", "jammy-updates"), "a:1")]
    assert pick_mirror(ubuntu) is None


def test_override_variable_wins(tmp_path: Path) -> None:
    paths = hosts(tmp_path, deb822=DEB822)
    env = {"COMMONSHELF_DEBIAN_MIRROR": "http://override.invalid/debian/"}
    assert debian_mirror(env, **paths) == "http://override.invalid/debian"
    assert debian_mirror({}, **paths) == MAIN


def test_nothing_found_is_one_actionable_error(tmp_path: Path) -> None:
    paths = hosts(tmp_path, one_line="deb cdrom:[Debian]/ bookworm main\n")
    with pytest.raises(CommonshelfError) as caught:
        debian_mirror({}, **paths)
    message = str(caught.value)
    assert "\n" not in message
    assert "No Debian mirror" in message
    assert "Fix: set COMMONSHELF_DEBIAN_MIRROR" in message


def test_missing_apt_configuration_is_nothing_found(tmp_path: Path) -> None:
    gone = tmp_path / "no-such-dir"
    assert host_mirror(gone / "sources.list", gone) is None


def _point_host_at(monkeypatch: pytest.MonkeyPatch, paths: Paths) -> None:
    monkeypatch.setattr(apt_sources, "SOURCES_LIST", paths["sources_list"])
    monkeypatch.setattr(apt_sources, "SOURCES_DIR", paths["sources_dir"])


def test_settings_load_never_fails_and_reading_the_mirror_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_host_at(monkeypatch, hosts(tmp_path))
    settings = Settings.load(tmp_path, env={})
    with pytest.raises(CommonshelfError, match="set COMMONSHELF_DEBIAN_MIRROR"):
        settings.debian_mirror  # noqa: B018 -- the read is what raises


def test_settings_read_the_host_mirror_and_the_override_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_host_at(monkeypatch, hosts(tmp_path, deb822=DEB822))
    assert Settings.load(tmp_path, env={}).debian_mirror == MAIN
    env = {"COMMONSHELF_DEBIAN_MIRROR": "http://override.invalid/debian"}
    assert Settings.load(tmp_path, env=env).debian_mirror == "http://override.invalid/debian"
    given = Settings(tmp_path, tmp_path, "r", 0, debian_mirror="http://given.invalid/debian")
    assert given.debian_mirror == "http://given.invalid/debian"
