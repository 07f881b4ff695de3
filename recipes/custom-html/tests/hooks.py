"""Seed hook for the standard matrix: real site content, written where the app serves from
and read back through the app's own HTTP interface."""

from __future__ import annotations

from commonshelf.harness import RunningStack

PAGE = "<h1>Seeded by the Commonshelf matrix</h1>\n"


def seed(app: RunningStack) -> None:
    app.exec(f"mkdir -p /srv/www/seeded && printf '%s' '{PAGE}' > /srv/www/seeded/index.html")


def verify(app: RunningStack) -> None:
    page = app.get("/seeded/")
    assert page.status_code == 200, f"GET /seeded/ answered {page.status_code}"
    assert page.text == PAGE
