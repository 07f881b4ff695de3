"""The catalogue page (`catalogue.html`): every app and version of the committed catalogue,
accessible structure (lang, one h1, no skipped heading level, captions, `<th scope>`), no
JavaScript, the same bytes for the same catalogue, and hostile catalogue values shown as
text, never as markup."""

from __future__ import annotations

import hashlib
import itertools
from html.parser import HTMLParser
from pathlib import Path

import msgspec

from commonshelf.catalogue import html
from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import Advisory, Finding, TargetRef, VersionEntry, Waived
from commonshelf.catalogue.html_version import changes, target_href

REPO = Path(__file__).resolve().parents[2]
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SAFE_TAGS = {
    *("html", "head", "meta", "title", "style", "body", "header", "nav", "main", "section"),
    *("h1", "h2", "h3", "h4", "p", "ul", "ol", "li", "a", "code", "br", "span", "time"),
    *("dl", "dt", "dd", "table", "caption", "thead", "tbody", "tr", "th", "td"),
}


class Page(HTMLParser):
    """What the page is made of: tags, attributes, headings, text."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(data.decode("utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def committed() -> Catalog:
    return Catalog.load(REPO / "catalog.json")


def test_every_app_and_version_of_the_committed_catalogue_is_on_the_page() -> None:
    catalog = committed()
    assert catalog.apps, "the committed catalogue lists apps"
    data = html.render(catalog)
    text = Page(data).all_text()
    for name, app in catalog.apps.items():
        assert app.title in text and name in text and app.description in text, name
        assert f"commonshelf install {name}" in text
        for version, entry in app.versions.items():
            assert f"{app.title} {version}" in text, (name, version)  # its own section
            assert f"commonshelf install {name} --version {version}" in text
            assert entry.commit in text and entry.released in text
            for service, ref in entry.vetting.scan.sboms.items():
                assert f'href="{target_href(ref)}"' in data.decode(), (name, version, service)
    assert html.render(committed()) == data  # deterministic: the same catalogue, same bytes


def test_the_page_is_accessible_and_has_no_javascript() -> None:
    page = Page(html.render(committed()))
    tags = [tag for tag, _ in page.tags]
    assert set(tags) <= SAFE_TAGS, set(tags) - SAFE_TAGS
    assert page.tags[0] == ("html", {"lang": "en"})
    assert tags.count("h1") == 1
    levels = [int(tag[1]) for tag in tags if tag in ("h1", "h2", "h3", "h4")]
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), "a level skipped"
    assert tags.count("table") == tags.count("caption") > 0
    assert all(attrs.get("scope") in ("col", "row") for tag, attrs in page.tags if tag == "th")
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)
    ids = [attrs["id"] for _, attrs in page.tags if "id" in attrs]
    assert len(ids) == len(set(ids)), "ids are unique"
    hrefs = [attrs.get("href") or "" for tag, attrs in page.tags if tag == "a"]
    anchors = {href[1:] for href in hrefs if href.startswith("#")}
    assert anchors <= set(ids), "every in-page link has a target"


def _hostile_catalogue() -> Catalog:
    catalog = committed()
    name, app = next(iter(sorted(catalog.apps.items())))
    version, entry = next(iter(app.versions.items()))
    scan = msgspec.structs.replace(
        entry.vetting.scan,
        summary=HOSTILE,
        db_digest=HOSTILE,
        blocking=(Finding(kind="vulnerability", id=HOSTILE, severity="HIGH", package=HOSTILE),),
        waived=(Waived(id="CVE-1", expires="2030-01-01", statement=HOSTILE),),
        sboms={
            "evil": TargetRef(path="../../keys/root.pem", sha256="a" * 64, length=1),
            "odd": TargetRef(path="sbom/x/y.json", sha256='"><script>', length=1),
            HOSTILE: TargetRef(path=f"sbom/{HOSTILE}/z.json", sha256="b" * 64, length=1),
        },
    )
    hostile_entry: VersionEntry = msgspec.structs.replace(
        entry,
        changes=f"- {HOSTILE}\n  continued {HOSTILE}",
        commit=HOSTILE,
        released='2026"><script>',
        revoked=HOSTILE,
        vetting=msgspec.structs.replace(entry.vetting, scan=scan),
    )
    hostile_app = msgspec.structs.replace(
        app,
        title=HOSTILE,
        description=HOSTILE,
        category=HOSTILE,
        versions={**app.versions, version: hostile_entry, HOSTILE: hostile_entry},
        advisories=(Advisory(id=HOSTILE, severity=HOSTILE, package=HOSTILE, affected=(HOSTILE,)),),
    )
    catalog.apps = {**catalog.apps, name: hostile_app, f'{name}" onload="x': hostile_app}
    catalog.commit = HOSTILE
    return catalog


def test_hostile_values_are_shown_as_text_never_as_markup() -> None:
    data = html.render(_hostile_catalogue())
    page = Page(data)
    assert "<script" not in data.decode().lower() and "<img" not in data.decode().lower()
    assert {tag for tag, _ in page.tags} <= SAFE_TAGS
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)
    assert HOSTILE in page.all_text()  # shown to the reader, as text
    hrefs = [attrs["href"] or "" for tag, attrs in page.tags if tag == "a"]
    # in-page anchors and relative target paths only: no scheme, no `..`, no raw markup
    assert not any(c in href for href in hrefs for c in (":", "..", "<", '"', " ")), hrefs
    # the escaped SBOM service name still links to its (percent-encoded) target
    assert any(href.startswith("targets/sbom/%3Cscript%3E") for href in hrefs), hrefs


def test_target_links_follow_the_consistent_snapshot_layout() -> None:
    data = b'{"bomFormat": "CycloneDX"}'
    digest = hashlib.sha256(data).hexdigest()
    ref = TargetRef(path="sbom/app/1.0.0+2.0/app.cdx.json", sha256=digest, length=len(data))
    assert target_href(ref) == f"targets/sbom/app/1.0.0%2B2.0/{digest}.app.cdx.json"
    for path in ("/abs/x.json", "a//b.json", "a/../b.json", "./a.json", ""):
        assert target_href(TargetRef(path=path, sha256=digest, length=1)) is None, path
    assert target_href(TargetRef(path="a.json", sha256="A" * 64, length=1)) is None


def test_changes_become_a_list() -> None:
    rendered = changes("Intro <b>line</b>\n- first\n  more of it\n* second\n\n")
    assert rendered == (
        "<p>Intro &lt;b&gt;line&lt;/b&gt;</p><ul><li>first more of it</li><li>second</li></ul>"
    )
    assert changes("") == "<p>No changes were recorded.</p>"


def test_the_page_is_written_atomically_and_only_when_it_changes(tmp_path: Path) -> None:
    catalog = committed()
    assert html.write_page(tmp_path, catalog) is True
    page = tmp_path / html.INDEX
    before = page.stat()
    assert page.read_bytes() == html.render(catalog)
    assert html.write_page(tmp_path, catalog) is False  # unchanged: mtime (and 304s) kept
    assert page.stat().st_mtime_ns == before.st_mtime_ns
    assert html.write_page(tmp_path, Catalog()) is True
    assert b"Nothing has been released yet." in page.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [html.INDEX]  # no temporary file left
