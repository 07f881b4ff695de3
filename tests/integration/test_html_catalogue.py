"""The catalogue page as a person sees it: the committed `catalog.json` published the way
the release publishes it (a real TUF repository, then `index.html` beside it), served by the
project's server on 127.0.0.1 and opened in headless Chromium (Debian's package). The
rendered DOM names every app and every version, an SBOM link reaches its TUF target, and a
screenshot is kept in build/screenshots/catalogue.png."""

from __future__ import annotations

import hashlib
import subprocess
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import msgspec

from commonshelf.catalogue import html
from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import TargetRef
from commonshelf.catalogue.server import serving
from commonshelf.catalogue.signing import Publisher, load_or_create_keys

from ..conftest import debian_command

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "build" / "screenshots" / "catalogue.png"
# loopback only: no sign-in, sync, component or field-trial downloads
QUIET = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)


def chromium() -> str:
    """Debian's Chromium, installed from Debian when missing."""
    return debian_command("chromium")


def browse(browser: str, profile: Path, *args: str) -> str:
    done = subprocess.run(
        [browser, *QUIET, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Dom(HTMLParser):
    """The rendered page's text and links."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.words: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.links += [value or "" for name, value in attrs if tag == "a" and name == "href"]

    def handle_data(self, data: str) -> None:
        self.words.append(data)

    def text(self) -> str:
        return " ".join(" ".join(self.words).split())


def test_the_catalogue_page_renders_in_chromium_with_every_app_and_version(
    tmp_path: Path,
) -> None:
    browser = chromium()
    catalog = Catalog.load(REPO / "catalog.json")
    assert catalog.apps, "the committed catalogue lists apps"
    # one version's SBOM is published here for real, so its link can be followed
    name, app = sorted(catalog.apps.items())[0]
    version, entry = html.newest_first(app.versions)[0]
    sbom = b'{"bomFormat": "CycloneDX", "specVersion": "1.5"}\n'
    ref = TargetRef(
        path=f"sbom/{name}/{version}/app.cdx.json",
        sha256=hashlib.sha256(sbom).hexdigest(),
        length=len(sbom),
    )
    scan = msgspec.structs.replace(entry.vetting.scan, sboms={"app": ref})
    vetting = msgspec.structs.replace(entry.vetting, scan=scan)
    versions = {**app.versions, version: msgspec.structs.replace(entry, vetting=vetting)}
    catalog.apps = {**catalog.apps, name: msgspec.structs.replace(app, versions=versions)}

    # as the release does it: sign and publish the targets, then write the page beside them
    public = tmp_path / "public"
    keys = load_or_create_keys(tmp_path / "keys", env={})[0]
    Publisher(public, keys).publish({ref.path: sbom, "catalog.json": catalog.to_bytes()})
    assert html.write_page(public, catalog)

    with serving(public) as url:
        dom = Dom(browse(browser, tmp_path / "profile", "--dump-dom", f"{url}/"))
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.unlink(missing_ok=True)
        browse(
            browser,
            tmp_path / "profile",
            "--window-size=1280,3000",
            f"--screenshot={SCREENSHOT}",
            f"{url}/",
        )
        [link] = [href for href in dom.links if f"/{ref.sha256}.app.cdx.json" in href]
        with urllib.request.urlopen(urllib.parse.urljoin(f"{url}/", link), timeout=5) as got:
            assert got.read() == sbom  # the link is the hash-prefixed TUF target

    text = dom.text()
    assert "Commonshelf catalogue" in text and "script" not in dom.tags
    count = 0
    for app_name, app_entry in catalog.apps.items():
        assert f"{app_entry.title} {app_name}" in text, app_name
        assert app_entry.description in text, app_name
        assert f"commonshelf install {app_name}" in text, app_name
        for app_version, version_entry in app_entry.versions.items():
            assert f"{app_entry.title} {app_version}" in text, (app_name, app_version)
            assert f"commonshelf install {app_name} --version {app_version}" in text
            assert version_entry.commit in text and version_entry.released in text
            count += 1
    assert f"{len(catalog.apps)} apps, {count} released versions" in text
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert SCREENSHOT.stat().st_size > 10_000  # a page was drawn, not an empty window
