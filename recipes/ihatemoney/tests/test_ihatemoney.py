"""I Hate Money through its own interfaces: the REST API (projects, members, bills,
balances, HTTP basic auth as project:code) and the web pages; its settings file written
from the secrets; and its start-up waiting for a PostgreSQL that is not ready yet."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from commonshelf.harness import RunningStack
from commonshelf.recipe import Recipe

PROJECT = "weekend"
CODE = "weekend-access-code"
AUTH = (PROJECT, CODE)


def api(app: RunningStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 30)
    return requests.request(method, app.url("/api" + path), **kwargs)


def python(app: RunningStack, code: str) -> str:
    return app.exec(["/opt/ihatemoney/bin/python", "-c", code])


@pytest.fixture(scope="module")
def members(app: RunningStack) -> dict[str, int]:
    """A project with three members, created through the API."""
    made = api(
        app,
        "POST",
        "/projects",
        data={
            "name": "Weekend away",
            "id": PROJECT,
            "password": CODE,
            "contact_email": "weekend@example.org",
            "default_currency": "XXX",
        },
    )
    assert made.status_code == 201, made.text
    assert made.json() == PROJECT
    ids = {}
    for name in ("Ann", "Ben", "Cat"):
        member = api(app, "POST", f"/projects/{PROJECT}/members", auth=AUTH, data={"name": name})
        assert member.status_code == 201, member.text
        ids[name] = int(member.json())
    return ids


def add_bill(
    app: RunningStack, what: str, payer: int, payed_for: list[int], amount: str
) -> requests.Response:
    return api(
        app,
        "POST",
        f"/projects/{PROJECT}/bills",
        auth=AUTH,
        data={
            "date": "2026-04-01",
            "what": what,
            "payer": payer,
            "payed_for": payed_for,
            "amount": amount,
            "original_currency": "XXX",
        },
    )


def balances(app: RunningStack) -> dict[str, float]:
    project = api(app, "GET", f"/projects/{PROJECT}", auth=AUTH)
    assert project.status_code == 200, project.text
    return {m["name"]: round(m["balance"], 2) for m in project.json()["members"]}


def test_health_path_answers(app: RunningStack, recipe: Recipe) -> None:
    health = app.get(recipe.main.health)
    assert health.status_code == 200
    assert health.text == "OK"


def test_runs_the_declared_upstream_version(app: RunningStack, recipe: Recipe) -> None:
    version = python(app, "import importlib.metadata as m; print(m.version('ihatemoney'))")
    assert version.strip() == recipe.upstream_version


def test_runs_unprivileged(app: RunningStack) -> None:
    assert app.exec("id -u").strip() != "0"


def test_home_page_offers_project_creation(app: RunningStack) -> None:
    page = app.get("/")
    assert page.status_code == 200
    assert "I Hate Money" in page.text
    assert 'name="id"' in page.text  # the "create a project" form (public creation is on)


def test_settings_come_from_the_secrets_and_stay_private(app: RunningStack) -> None:
    settings = "/etc/ihatemoney/ihatemoney.cfg"
    assert app.exec(f"stat -c %a {settings}").strip() == "600"
    db_password = app.exec("cat /run/secrets/db_password").strip()
    secret_key = app.exec("cat /run/secrets/secret_key").strip()
    admin_password = app.exec("cat /run/secrets/admin_password").strip()
    config = python(
        app,
        "from ihatemoney.run import load_configuration; from flask import Flask; "
        "a = Flask('x'); load_configuration(a); c = a.config; "
        "print(c['SQLALCHEMY_DATABASE_URI'].split('@')[1], c['SECRET_KEY'] == open("
        "'/run/secrets/secret_key').read().strip(), c['SESSION_COOKIE_SECURE'], "
        "c['ACTIVATE_DEMO_PROJECT'], c['ALLOW_PUBLIC_PROJECT_CREATION'], "
        "c['ADMIN_PASSWORD'].split('$')[0])",
    ).split()
    assert config[0] == "db:5432/ihatemoney"
    assert config[1:5] == ["True", "False", "False", "True"]
    assert config[5] == "pbkdf2:sha256:600000"  # hashed, never the plain password
    shown = app.logs("app", 500) + app.exec("env")
    for value in (db_password, secret_key, admin_password):
        assert value not in shown


def test_wrong_code_is_refused(app: RunningStack, members: dict[str, int]) -> None:
    assert api(app, "GET", f"/projects/{PROJECT}").status_code == 401
    assert api(app, "GET", f"/projects/{PROJECT}", auth=(PROJECT, "nope")).status_code == 401
    assert api(app, "GET", "/projects/nothing-here", auth=("nothing-here", CODE)).status_code == 401


def test_bills_make_balances_and_a_settle_plan(app: RunningStack, members: dict[str, int]) -> None:
    ann, ben, cat = members["Ann"], members["Ben"], members["Cat"]
    assert add_bill(app, "Train tickets", ann, [ann, ben, cat], "60").status_code == 201
    assert add_bill(app, "Dinner", ben, [ann, ben], "30.50").status_code == 201
    assert balances(app) == {"Ann": 24.75, "Ben": -4.75, "Cat": -20.0}

    bills = api(app, "GET", f"/projects/{PROJECT}/bills", auth=AUTH).json()
    dinner = next(b for b in bills if b["what"] == "Dinner")
    assert dinner["amount"] == 30.5
    assert sorted(o["id"] for o in dinner["owers"]) == sorted([ann, ben])

    stats = api(app, "GET", f"/projects/{PROJECT}/statistics", auth=AUTH)
    assert stats.status_code == 200
    paid = {s["member"]["name"]: s["paid"] for s in stats.json()}
    assert paid == {"Ann": 60.0, "Ben": 30.5, "Cat": 0.0}

    settle = app.get(f"/{PROJECT}/settle_bills", auth=AUTH, allow_redirects=False)
    # the web pages use a session, not basic auth: without one they send to the login page
    assert settle.status_code in (302, 303)


def test_the_web_login_shows_the_project(app: RunningStack, members: dict[str, int]) -> None:
    browser = requests.Session()
    page = browser.get(app.url(f"/{PROJECT}/settle_bills"), timeout=30)
    assert page.status_code == 200 and 'name="password"' in page.text
    csrf = csrf_token(page.text)
    login = browser.post(
        app.url("/authenticate"),
        data={"id": PROJECT, "password": CODE, "csrf_token": csrf},
        timeout=30,
    )
    assert login.status_code == 200
    settle = browser.get(app.url(f"/{PROJECT}/settle_bills"), timeout=30)
    assert settle.status_code == 200
    assert "Ann" in settle.text and "Cat" in settle.text and "20.00" in settle.text


def csrf_token(html: str) -> str:
    return html.split('name="csrf_token"', 1)[1].split('value="', 1)[1].split('"', 1)[0]


def test_the_admin_password_opens_every_project(app: RunningStack, members: dict[str, int]) -> None:
    browser = requests.Session()
    goto = f"/{PROJECT}/"
    assert "/authenticate" in browser.get(app.url(goto), timeout=30).url  # no access yet
    page = browser.get(app.url(f"/admin?goto={goto}"), timeout=30)
    assert page.status_code == 200 and 'name="admin_password"' in page.text
    wrong = browser.post(
        app.url(f"/admin?goto={goto}"),
        data={"admin_password": "not-the-password", "csrf_token": csrf_token(page.text)},
        allow_redirects=False,
        timeout=30,
    )
    assert wrong.status_code == 200 and "not the right one" in wrong.text
    right = browser.post(
        app.url(f"/admin?goto={goto}"),
        data={
            "admin_password": app.exec("cat /run/secrets/admin_password").strip(),
            "csrf_token": csrf_token(wrong.text),
        },
        allow_redirects=False,
        timeout=30,
    )
    assert right.status_code == 302 and right.headers["Location"].endswith(goto)
    project = browser.get(app.url(goto), timeout=30)
    assert project.status_code == 200 and "Ann" in project.text


def test_data_survives_a_restart_of_every_service(
    app: RunningStack, members: dict[str, int]
) -> None:
    before = balances(app)
    app.restart()
    assert balances(app) == before


def test_app_recovers_when_the_database_restarts(
    app: RunningStack, members: dict[str, int]
) -> None:
    before = balances(app)
    app.restart("db")
    # connections the database dropped are replaced (pool_pre_ping), not failed on
    assert balances(app) == before
    assert add_bill(app, "Coffee", members["Cat"], [members["Cat"]], "3").status_code == 201


def test_app_start_waits_for_a_database_that_is_not_ready(
    app: RunningStack, members: dict[str, int]
) -> None:
    """The matrix starts both services at once: an app that starts first must wait."""
    db = app.services["db"].docker_container
    web = app.services["app"].docker_container
    db.stop(timeout=20)
    try:
        web.restart(timeout=20)
        # the app keeps waiting (and is not healthy) while the database is down ...
        logs = ""
        for _ in range(60):
            logs = app.logs("app", 50)
            if "waiting for the database" in logs:
                break
            time.sleep(1)
        assert "waiting for the database" in logs
        web.reload()
        assert web.attrs["State"]["Status"] == "running"
        assert (web.attrs["State"].get("Health") or {}).get("Status") != "healthy"
    finally:
        db.start()
    # ... and carries on by itself once it answers
    app.wait_healthy()
    web.reload()
    assert web.attrs["RestartCount"] == 0
    assert "database db:5432 is ready" in app.logs("app", 200)
    assert balances(app)["Cat"] == -20.0
