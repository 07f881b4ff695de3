"""{{title}}: serves its page, reports health, and keeps its data across restarts."""

from __future__ import annotations

from commonshelf.harness import RunningStack
from commonshelf.recipe import Recipe


def test_serves_its_page(app: RunningStack) -> None:
    page = app.get("/")
    assert page.status_code == 200
    assert "{{title}} is running" in page.text


def test_health_path_answers(app: RunningStack, recipe: Recipe) -> None:
    assert app.get(recipe.main.health).status_code == 200


def test_data_survives_a_restart(app: RunningStack) -> None:
    app.exec("echo kept > /srv/www/kept.txt")
    app.restart()
    assert app.get("/kept.txt").text == "kept\n"
