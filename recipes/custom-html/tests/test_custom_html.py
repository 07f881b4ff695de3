"""Custom HTML serves its volume, reports health, and keeps data across restarts."""

from __future__ import annotations

from commonshelf.harness import RunningStack
from commonshelf.recipe import Recipe


def test_serves_the_welcome_page(app: RunningStack) -> None:
    page = app.get("/")
    assert page.status_code == 200
    assert "Your site is live" in page.text


def test_health_path_answers(app: RunningStack, recipe: Recipe) -> None:
    health = app.get(recipe.main.health)
    assert health.status_code == 200
    assert health.text.strip() == "ok"


def test_runs_the_declared_upstream_version(app: RunningStack, recipe: Recipe) -> None:
    assert f"nginx/{recipe.upstream_version}" in app.exec("nginx -v 2>&1")


def test_runs_unprivileged(app: RunningStack) -> None:
    assert app.exec("id -u").strip() != "0"


def test_site_content_survives_a_restart(app: RunningStack) -> None:
    app.exec("echo 'kept across restarts' > /srv/www/kept.html")
    app.restart()
    page = app.get("/kept.html")
    assert page.status_code == 200
    assert page.text == "kept across restarts\n"
