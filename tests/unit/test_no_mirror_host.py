"""No package mirror's host name is written anywhere in the repository.

The base image's mirror comes from the host's apt sources (or
COMMONSHELF_DEBIAN_MIRROR), never from a literal. This scans every text file git
knows of (tracked, plus new files not ignored) for apt-style mirror URLs: a URL
whose path is the archive root of Debian or of its security archive, or whose host
contains the Debian domain. Made-up hosts under reserved names (.invalid, .test,
.example, localhost) are fine. The patterns are built in pieces, so this file
does not contain what it looks for.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NAME = "deb" + "ian"
URL = re.compile(
    r"(?i)\b[a-z][a-z0-9+.-]*://"  # scheme
    r"(?:[^/\s@'\"<>`]*@)?"  # user info
    r"(?P<host>[a-z0-9_.\-]+|\[[0-9a-f:.]+\])"  # host name or [IPv6]
    r"(?::\d+)?"  # port
    r"(?P<path>/[^\s'\"<>`)\]}|]*)?"
)
ARCHIVE_PATH = re.compile(rf"(?i)^/{NAME}(?:-security)?/?$")
HOST_WORD = NAME + "."
RESERVED = re.compile(r"(?i)(?:^|\.)(?:invalid|test|example|localhost)$|^example\.(?:com|net|org)$")


def mirror_urls(line: str) -> list[str]:
    """The apt-style mirror URLs in one line of text."""
    found = []
    for match in URL.finditer(line):
        host = match["host"].lower().rstrip(".")
        if RESERVED.search(host):
            continue
        if HOST_WORD in host or ARCHIVE_PATH.match(match["path"] or ""):
            found.append(match.group(0))
    return found


# pip's and npm's own options that name a package index's host (trusted host, index URL)
INDEX_OPTION = re.compile(
    r"--(?:trusted-host|index-url|extra-index-url|registry)[ =]+(?P<value>[^\s'\"\\]+)"
)


def index_hosts(line: str) -> list[str]:
    """Package index hosts a pip or npm option names in one line (made-up hosts and
    variables such as `$PIP_TRUSTED_HOST` aside)."""
    found = []
    for match in INDEX_OPTION.finditer(line):
        value = match["value"]
        host = (URL.match(value)["host"] if URL.match(value) else value).lower()  # type: ignore[index]
        if value.startswith("$") or RESERVED.search(host.split(":")[0]):
            continue
        found.append(match.group(0))
    return found


def repository_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    return [REPO / name for name in sorted(set(listed.decode().split("\0"))) if name]


def text_of(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):  # deleted, or a submodule
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_the_detector_finds_mirror_urls_and_spares_made_up_hosts() -> None:
    domain = f"{NAME}.org"
    assert mirror_urls(f"URIs: http://deb.{domain}/{NAME}") == [f"http://deb.{domain}/{NAME}"]
    assert mirror_urls(f"see https://salsa.{domain}/x") == [f"https://salsa.{domain}/x"]
    assert mirror_urls(f"deb [arch=amd64] http://ftp.corp.lan/{NAME}-security/ bookworm main")
    assert mirror_urls(f"`http://mirror.corp.lan:3142/{NAME}`")
    assert not mirror_urls(f"deb http://mirror.invalid/{NAME} bookworm main")
    assert not mirror_urls(f"http://mirror.example/{NAME}-security and http://localhost/{NAME}")
    assert not mirror_urls(f"https://hub.docker.example/_/{NAME} and /etc/apt/{NAME}.sources")
    assert not mirror_urls(f"https://github.com/{NAME}/tools")
    index, trusted, registry = "pypi" + ".org", "--" + "trusted-host", "--" + "registry"
    assert index_hosts(f"pip install {trusted} {index} -r r.txt") == [f"{trusted} {index}"]
    assert index_hosts(f"npm ci {registry}=https://registry.npmjs{'.org'}/")
    assert not index_hosts(f'pip install {trusted} "$PIP_TRUSTED_HOST" x')
    assert not index_hosts(f"pip install --{'index-url'} http://pypi.invalid/simple x")


def test_no_package_mirror_host_is_written_in_the_repository() -> None:
    offences = []
    for path in repository_files():
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for url in mirror_urls(line) + index_hosts(line):
                offences.append(f"{path.relative_to(REPO)}:{number}: {url}")
    assert not offences, (
        "package mirror URLs are written in the repository (the mirror comes from the host's "
        "apt sources or COMMONSHELF_DEBIAN_MIRROR; use a made-up host under .invalid in "
        "tests):\n" + "\n".join(offences)
    )
