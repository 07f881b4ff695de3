"""Seed hook for the standard matrix: a project with members and bills, created through
I Hate Money's REST API as a client would, and its balances read back the same way."""

from __future__ import annotations

from typing import Any

import requests

from commonshelf.harness import RunningStack

PROJECT = "seeded-trip"
CODE = "seeded-trip-private-code"  # the project's own access code, chosen by its "user"
AUTH = (PROJECT, CODE)
MEMBERS = ("Alice", "Bob", "Carol")


def _api(app: RunningStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    """Any HTTP method through the same route `app.get` takes (behind the matrix's proxy
    that means its Host header, which `app.url` alone does not carry)."""
    sent = app.get("/healthcheck").request.headers
    headers = {"Host": sent["Host"]} if "Host" in sent else {}
    headers.update(kwargs.pop("headers", {}))
    kwargs.setdefault("timeout", 30)
    return requests.request(method, app.url("/api" + path), headers=headers, **kwargs)


def seed(app: RunningStack) -> None:
    made = _api(
        app,
        "POST",
        "/projects",
        data={
            "name": "Seeded trip",
            "id": PROJECT,
            "password": CODE,
            "contact_email": "trip@example.org",
            "default_currency": "XXX",
        },
    )
    assert made.status_code == 201, f"creating the project answered {made.status_code}: {made.text}"
    ids = {}
    for name in MEMBERS:
        member = _api(app, "POST", f"/projects/{PROJECT}/members", auth=AUTH, data={"name": name})
        assert member.status_code == 201, f"adding {name} answered {member.status_code}"
        ids[name] = int(member.json())
    bill = _api(
        app,
        "POST",
        f"/projects/{PROJECT}/bills",
        auth=AUTH,
        data={
            "date": "2026-03-01",
            "what": "Cabin",
            "payer": ids["Alice"],
            "payed_for": [ids["Alice"], ids["Bob"], ids["Carol"]],
            "amount": "90",
            "original_currency": "XXX",
        },
    )
    assert bill.status_code == 201, f"adding a bill answered {bill.status_code}: {bill.text}"
    bill = _api(
        app,
        "POST",
        f"/projects/{PROJECT}/bills",
        auth=AUTH,
        data={
            "date": "2026-03-02",
            "what": "Groceries",
            "payer": ids["Bob"],
            "payed_for": [ids["Alice"], ids["Bob"]],
            "amount": "20",
            "original_currency": "XXX",
        },
    )
    assert bill.status_code == 201, f"adding a bill answered {bill.status_code}: {bill.text}"


def verify(app: RunningStack) -> None:
    project = _api(app, "GET", f"/projects/{PROJECT}", auth=AUTH)
    assert project.status_code == 200, f"reading the project answered {project.status_code}"
    balances = {m["name"]: round(m["balance"], 2) for m in project.json()["members"]}
    # Alice paid 90 for three (+60) and owes 10 of the groceries; Bob paid 20 for two.
    assert balances == {"Alice": 50.0, "Bob": -20.0, "Carol": -30.0}, balances
    bills = _api(app, "GET", f"/projects/{PROJECT}/bills", auth=AUTH)
    assert bills.status_code == 200
    assert sorted(b["what"] for b in bills.json()) == ["Cabin", "Groceries"]
    refused = _api(app, "GET", f"/projects/{PROJECT}", auth=(PROJECT, CODE + "-wrong"))
    assert refused.status_code == 401, f"a wrong code got {refused.status_code}"
