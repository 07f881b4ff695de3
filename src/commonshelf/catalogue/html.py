"""The catalogue as a web page: `public/index.html`, for people choosing an app.

Installations never read it (they verify `catalog.json` through TUF); it is a plain,
static rendering of the same catalogue, so any web server or object store that serves
`public/` shows it. No JavaScript; semantic HTML (headings, lists, tables with `<th
scope>`, `lang`) reads the same with or without its small inline stylesheet.

Every value comes from the catalogue, which is untrusted here (a recipe's description is
whatever its packager wrote), so every value goes through `html.escape` and the few that
become links are built only from checked parts. The page is a pure function of the
catalogue (no clock, no machine paths): the same catalogue gives the same bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

import semver

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import AppEntry, PlatformComponent, VersionEntry
from commonshelf.catalogue.html_version import (
    advisories_table,
    channel_of,
    checks_summary,
    e,
    scan_brief,
    version_section,
)
from commonshelf.platform.fsutil import write_bytes_atomic

INDEX = "index.html"

STYLE = """
body{font-family:system-ui,sans-serif;line-height:1.45;max-width:76rem;margin:0 auto;
padding:1rem;color:#1b1b1b;background:#fff}
h1,h2,h3,h4{line-height:1.2}
section.app{border-top:3px solid #333;margin-top:2.5rem}
section.version{border-left:3px solid #ccc;padding-left:1rem;margin:1.5rem 0}
table{border-collapse:collapse;margin:.5rem 0 1rem}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border:1px solid #aaa;padding:.2rem .5rem;text-align:left;vertical-align:top}
thead th{background:#eee}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem}
dt{font-weight:600}dd{margin:0}
code{overflow-wrap:anywhere}
.passed{color:#0b6b2e}.failed,.revoked,.blocking{color:#a40000;font-weight:600}
""".strip()


def _slugs(names: list[str]) -> dict[str, str]:
    """A unique, safe `id` per app name (names are untrusted: no quotes, no spaces)."""
    out: dict[str, str] = {}
    for name in names:
        slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "app"
        candidate, n = slug, 1
        while f"app-{candidate}" in out.values():
            n += 1
            candidate = f"{slug}-{n}"
        out[name] = f"app-{candidate}"
    return out


def newest_first(versions: dict[str, VersionEntry]) -> list[tuple[str, VersionEntry]]:
    """Versions by semver, newest first; a key that is not semver (untrusted input) last."""

    def key(item: tuple[str, VersionEntry]) -> tuple[int, semver.Version, str]:
        valid = semver.Version.is_valid(item[0])
        return (1 if valid else 0, semver.Version.parse(item[0]) if valid else _ZERO, item[0])

    return sorted(versions.items(), key=key, reverse=True)


_ZERO = semver.Version(0)


def _versions_table(app: AppEntry, anchor: str) -> str:
    rows = []
    for index, (version, entry) in enumerate(newest_first(app.versions)):
        status = (
            f'<span class="revoked">revoked: {e(entry.revoked)}</span>'
            if entry.revoked
            else "available"
        )
        rows.append(
            "<tr>"
            f'<th scope="row"><a href="#{anchor}-v{index}">{e(version)}</a></th>'
            f"<td>{e(channel_of(entry)) or '—'}</td>"
            f"<td>{e(entry.vetting.level)}</td>"
            f"<td>{checks_summary(entry)}</td>"
            f"<td>{scan_brief(entry)}</td>"
            f'<td><time datetime="{e(entry.released)}">{e(entry.released)}</time></td>'
            f"<td><code>{e(entry.commit[:12])}</code></td>"
            f"<td>{status}</td>"
            "</tr>"
        )
    head = "".join(
        f'<th scope="col">{label}</th>'
        for label in (
            "Version",
            "Channel",
            "Level",
            "Checks",
            "Scan",
            "Released",
            "Source commit",
            "Status",
        )
    )
    return (
        f"<table><caption>Versions of {e(app.title)}, newest first</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _app_section(name: str, app: AppEntry, anchor: str) -> str:
    versions = newest_first(app.versions)
    allowed = [version for version, entry in versions if not entry.revoked]
    parts = [
        f'<section class="app" id="{anchor}" aria-labelledby="{anchor}-title">',
        f'<h2 id="{anchor}-title">{e(app.title)} <code>{e(name)}</code></h2>',
        f"<p>{e(app.description)}</p>",
        "<dl>",
        f"<dt>Category</dt><dd>{e(app.category)}</dd>",
        f"<dt>Newest version</dt><dd>{e(allowed[0]) if allowed else 'none available'}</dd>",
        f"<dt>Install</dt><dd><code>commonshelf install {e(name)}</code></dd>",
        "</dl>",
        f'<h3 id="{anchor}-versions">Versions</h3>',
        _versions_table(app, anchor),
        f'<h3 id="{anchor}-advisories">Security advisories</h3>',
        advisories_table(app),
    ]
    for index, (version, entry) in enumerate(versions):
        parts.append(version_section(name, app, version, entry, f"{anchor}-v{index}"))
    parts.append("</section>")
    return "\n".join(parts)


def _platform(platform: dict[str, PlatformComponent]) -> str:
    if not platform:
        return ""
    rows = "".join(
        f'<tr><th scope="row">{e(name)}</th><td>{e(part.version)}</td>'
        f"<td><code>{e(part.digest)}</code></td></tr>"
        for name, part in sorted(platform.items())
    )
    return (
        '<section aria-labelledby="platform"><h2 id="platform">Installation platform</h2>'
        "<table><caption>Components every installation runs</caption><thead><tr>"
        '<th scope="col">Component</th><th scope="col">Version</th>'
        f'<th scope="col">Image digest</th></tr></thead><tbody>{rows}</tbody></table></section>'
    )


def _how_to_install() -> str:
    return (
        '<section aria-labelledby="how"><h2 id="how">How to install an app</h2><ol>'
        "<li>Subscribe once, with this repository's root metadata obtained out of band "
        "(<code>1.root.json</code>, compared with the copy your publisher gave you):<br>"
        "<code>commonshelf init --repository URL-OF-THIS-FOLDER --root 1.root.json</code></li>"
        "<li>Install an app, newest version: <code>commonshelf install APP</code>; "
        "a given version: <code>commonshelf install APP --version VERSION</code>.</li>"
        "<li>See what an installation runs and what is known about it: "
        "<code>commonshelf status</code>, <code>commonshelf info APP</code>.</li>"
        "</ol><p>Installations verify every file against the signed TUF metadata in "
        "<code>metadata/</code>; this page is a summary for people and is not signed.</p>"
        "</section>"
    )


def render(catalog: Catalog) -> bytes:
    """The whole page for `catalog`, as UTF-8 bytes (same catalogue, same bytes)."""
    names = sorted(catalog.apps)
    anchors = _slugs(names)
    count = sum(len(catalog.apps[name].versions) for name in names)
    nav = "".join(
        f'<li><a href="#{anchors[name]}">{e(catalog.apps[name].title)}</a> '
        f"<code>{e(name)}</code></li>"
        for name in names
    )
    generated = (
        f'Generated <time datetime="{e(catalog.generated)}">{e(catalog.generated)}</time> '
        f"from source commit <code>{e(catalog.commit)}</code>."
        if catalog.generated
        else "Nothing has been released yet."
    )
    body = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Commonshelf catalogue</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>Commonshelf catalogue</h1>",
        f"<p>{len(names)} apps, {count} released versions. {generated}</p>",
        "</header>",
        f'<nav aria-labelledby="toc"><h2 id="toc">Apps</h2><ul>{nav}</ul></nav>',
        "<main>",
        _how_to_install(),
        *(_app_section(name, catalog.apps[name], anchors[name]) for name in names),
        _platform(catalog.platform),
        "</main>",
        "</body>",
        "</html>",
    ]
    return ("\n".join(part for part in body if part) + "\n").encode("utf-8")


def write_page(public_dir: Path, catalog: Catalog) -> bool:
    """Write `public_dir/index.html` atomically when its bytes change (an unchanged page
    keeps its mtime, so conditional requests keep answering 304). True when written."""
    path = public_dir / INDEX
    data = render(catalog)
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_bytes_atomic(path, data)
    return True
