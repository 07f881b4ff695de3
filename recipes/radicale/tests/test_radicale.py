"""Radicale over its own protocols: CalDAV and CardDAV with plain HTTP requests.

Calendars, events, address books and contacts are created and read back the way a
client app does; logins are checked against the htpasswd users file the entrypoint
writes from the admin_password secret; data survives a restart.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest
import requests

from commonshelf.harness import RunningStack
from commonshelf.recipe import Recipe

XML = {"Content-Type": "application/xml; charset=utf-8"}
MKCALENDAR = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:set><D:prop><D:displayname>Work</D:displayname></D:prop></D:set></C:mkcalendar>"
)
MKADDRESSBOOK = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">'
    "<D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>"
    "<D:displayname>Friends</D:displayname></D:prop></D:set></D:mkcol>"
)


def event(uid: str, summary: str, start: str = "20260310T090000Z") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Commonshelf//tests//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def vcard(uid: str, name: str, email: str) -> str:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\n"
        f"N:{name.split()[-1]};{name.split()[0]};;;\r\nEMAIL:{email}\r\nEND:VCARD\r\n"
    )


def dav(app: RunningStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 15)
    return requests.request(method, app.url(path), **kwargs)


@pytest.fixture(scope="module")
def admin(app: RunningStack, recipe: Recipe) -> tuple[str, str]:
    """The first user: ADMIN_USER's default and the generated admin_password secret."""
    user = str(recipe.manifest["env"]["ADMIN_USER"]["default"])
    assert app.exec("printenv RADICALE_ADMIN_USER").strip() == user
    password = app.exec("cat /run/secrets/admin_password").strip()
    assert len(password) >= 16
    return user, password


@pytest.fixture(scope="module")
def calendar(app: RunningStack, admin: tuple[str, str]) -> str:
    user, _ = admin
    path = f"/{user}/work/"
    made = dav(app, "MKCALENDAR", path, auth=admin, data=MKCALENDAR, headers=XML)
    assert made.status_code == 201, made.text
    return path


@pytest.fixture(scope="module")
def addressbook(app: RunningStack, admin: tuple[str, str]) -> str:
    user, _ = admin
    path = f"/{user}/friends/"
    made = dav(app, "MKCOL", path, auth=admin, data=MKADDRESSBOOK, headers=XML)
    assert made.status_code == 201, made.text
    return path


def test_health_path_answers_without_login(app: RunningStack, recipe: Recipe) -> None:
    page = app.get(recipe.main.health)
    assert page.status_code == 200
    assert "Radicale" in page.text


def test_runs_the_declared_upstream_version(app: RunningStack, recipe: Recipe) -> None:
    # the version is the last line (newer releases log their start-up first)
    printed = app.exec("radicale --version 2>/dev/null").strip().splitlines()
    assert printed[-1] == recipe.upstream_version


def test_runs_unprivileged(app: RunningStack) -> None:
    assert app.exec("id -u").strip() != "0"


def test_users_file_is_private_and_holds_a_bcrypt_hash(
    app: RunningStack, admin: tuple[str, str]
) -> None:
    user, password = admin
    assert app.exec("stat -c %a /var/lib/radicale/users").strip() == "600"
    entry = app.exec(f"grep '^{user}:' /var/lib/radicale/users").strip()
    assert entry.startswith(f"{user}:$2b$")
    assert password not in app.exec("cat /var/lib/radicale/users")
    assert password not in app.logs("app", 200)


def test_the_admin_logs_in_and_a_wrong_password_is_refused(
    app: RunningStack, admin: tuple[str, str]
) -> None:
    user, password = admin
    propfind = {"Depth": "0"}
    assert dav(app, "PROPFIND", f"/{user}/", auth=admin, headers=propfind).status_code == 207
    wrong = dav(app, "PROPFIND", f"/{user}/", auth=(user, password + "x"), headers=propfind)
    assert wrong.status_code == 401
    assert "Basic" in wrong.headers.get("WWW-Authenticate", "")
    assert dav(app, "PROPFIND", f"/{user}/", headers=propfind).status_code == 401
    nobody = dav(app, "PROPFIND", "/nobody/", auth=("nobody", password), headers=propfind)
    assert nobody.status_code == 401


def test_an_event_is_stored_and_found_again(
    app: RunningStack, admin: tuple[str, str], calendar: str
) -> None:
    put = dav(
        app,
        "PUT",
        f"{calendar}standup.ics",
        auth=admin,
        data=event("standup-1", "Team stand-up"),
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert put.status_code == 201, put.text
    got = dav(app, "GET", f"{calendar}standup.ics", auth=admin)
    assert got.status_code == 200
    assert "SUMMARY:Team stand-up" in got.text
    assert got.headers["Content-Type"].startswith("text/calendar")

    # A time-range calendar-query REPORT, as calendar clients sync.
    query = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        '<C:time-range start="20260301T000000Z" end="20260401T000000Z"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )
    report = dav(
        app, "REPORT", calendar, auth=admin, data=query, headers={**XML, "Depth": "1"}
    )
    assert report.status_code == 207, report.text
    assert "standup.ics" in report.text and "Team stand-up" in report.text
    outside = query.replace("20260301T000000Z", "20270101T000000Z").replace(
        "20260401T000000Z", "20270201T000000Z"
    )
    empty = dav(app, "REPORT", calendar, auth=admin, data=outside, headers={**XML, "Depth": "1"})
    assert empty.status_code == 207
    assert "standup.ics" not in empty.text


def test_the_calendar_is_listed_as_a_calendar(
    app: RunningStack, admin: tuple[str, str], calendar: str
) -> None:
    user, _ = admin
    body = (
        '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
        "<D:prop><D:resourcetype/><D:displayname/></D:prop></D:propfind>"
    )
    listing = dav(
        app, "PROPFIND", f"/{user}/", auth=admin, data=body, headers={**XML, "Depth": "1"}
    )
    assert listing.status_code == 207
    responses = ElementTree.fromstring(listing.content).findall("{DAV:}response")
    found = {r.findtext("{DAV:}href"): r for r in responses}
    assert calendar in found, sorted(found)
    props = found[calendar].find("{DAV:}propstat/{DAV:}prop")
    assert props is not None
    assert props.find("{DAV:}resourcetype/{urn:ietf:params:xml:ns:caldav}calendar") is not None
    assert props.findtext("{DAV:}displayname") == "Work"


def test_a_contact_is_stored_and_found_again(
    app: RunningStack, admin: tuple[str, str], addressbook: str
) -> None:
    put = dav(
        app,
        "PUT",
        f"{addressbook}ada.vcf",
        auth=admin,
        data=vcard("ada-1", "Ada Lovelace", "ada@example.org"),
        headers={"Content-Type": "text/vcard; charset=utf-8"},
    )
    assert put.status_code == 201, put.text
    got = dav(app, "GET", f"{addressbook}ada.vcf", auth=admin)
    assert got.status_code == 200
    assert "FN:Ada Lovelace" in got.text
    query = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<CR:addressbook-query xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">'
        "<D:prop><D:getetag/><CR:address-data/></D:prop>"
        '<CR:filter><CR:prop-filter name="EMAIL">'
        '<CR:text-match collation="i;unicode-casemap" match-type="contains">ada@</CR:text-match>'
        "</CR:prop-filter></CR:filter></CR:addressbook-query>"
    )
    report = dav(
        app, "REPORT", addressbook, auth=admin, data=query, headers={**XML, "Depth": "1"}
    )
    assert report.status_code == 207, report.text
    assert "ada.vcf" in report.text and "Ada Lovelace" in report.text


def test_a_second_user_sees_only_their_own_collections(
    app: RunningStack, admin: tuple[str, str], calendar: str
) -> None:
    app.exec("printf '%s\\n' 'bob-s3cret-for-tests' | radicale-passwd bob")
    bob = ("bob", "bob-s3cret-for-tests")
    assert dav(app, "PROPFIND", "/bob/", auth=bob, headers={"Depth": "0"}).status_code == 207
    refused = dav(app, "GET", f"{calendar}standup.ics", auth=bob)
    assert refused.status_code in (403, 404)
    assert "Team stand-up" not in refused.text
    # Adding bob left the admin's login as it was.
    assert dav(app, "PROPFIND", f"/{admin[0]}/", auth=admin, headers={"Depth": "0"}).status_code == 207


def test_data_and_logins_survive_a_restart(
    app: RunningStack, admin: tuple[str, str], calendar: str, addressbook: str
) -> None:
    dav(
        app,
        "PUT",
        f"{calendar}kept.ics",
        auth=admin,
        data=event("kept-1", "Kept across restarts"),
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    ).raise_for_status()
    users_before = app.exec("cat /var/lib/radicale/users")
    app.restart()
    assert app.exec("cat /var/lib/radicale/users") == users_before  # admin not re-created
    got = dav(app, "GET", f"{calendar}kept.ics", auth=admin)
    assert got.status_code == 200
    assert "SUMMARY:Kept across restarts" in got.text
    assert dav(app, "GET", f"{addressbook}ada.vcf", auth=admin).status_code == 200
