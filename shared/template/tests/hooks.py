"""Seed hook for the standard matrix: create real data through the app's own interface in
seed(), and check it is all there in verify(). Replace these with your app's (e.g. create
a user and a document through its API, then fetch them)."""

from __future__ import annotations

from commonshelf.harness import RunningStack


def seed(app: RunningStack) -> None:
    app.exec("echo 'seeded by the matrix' > /srv/www/seeded.txt")


def verify(app: RunningStack) -> None:
    page = app.get("/seeded.txt")
    assert page.status_code == 200, f"GET /seeded.txt answered {page.status_code}"
    assert page.text == "seeded by the matrix\n"
