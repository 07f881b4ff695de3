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


def test_text_is_sent_compressed(app: RunningStack) -> None:
    app.exec("head -c 4096 /dev/zero | tr '\\0' a > /srv/www/big.txt")
    page = app.get("/big.txt", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200
    assert page.headers.get("Content-Encoding") == "gzip"
    assert page.text == "a" * 4096  # requests decompresses


def test_the_sites_own_404_page_is_shown(app: RunningStack) -> None:
    assert app.get("/missing").status_code == 404
    app.exec("echo 'Nothing here, sorry.' > /srv/www/404.html")
    page = app.get("/missing")
    assert page.status_code == 404
    assert page.text == "Nothing here, sorry.\n"
    assert app.get("/404.html").status_code == 404  # only as an error page


def test_answers_carry_safe_headers(app: RunningStack) -> None:
    page = app.get("/")
    assert page.headers.get("X-Content-Type-Options") == "nosniff"
    assert page.headers.get("Referrer-Policy") == "strict-origin-when-cross-origin"


def test_assets_may_be_cached_and_pages_are_revalidated(app: RunningStack) -> None:
    app.exec("mkdir -p /srv/www/css && echo 'body { color: teal; }' > /srv/www/css/site.css")
    asset = app.get("/css/site.css")
    assert asset.status_code == 200
    assert asset.headers.get("Cache-Control") == "max-age=3600"
    assert asset.headers.get("X-Content-Type-Options") == "nosniff"
    page = app.get("/")
    assert page.headers.get("Cache-Control") == "no-cache"
    assert page.headers.get("Referrer-Policy") == "strict-origin-when-cross-origin"
