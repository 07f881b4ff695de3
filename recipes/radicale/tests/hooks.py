"""Seed hook for the standard matrix: a calendar with an event and an address book with a
contact, created over CalDAV/CardDAV as a client app would, then read back the same way."""

from __future__ import annotations

from typing import Any

import requests

from commonshelf.harness import RunningStack

CALENDAR = "seeded-calendar"
BOOK = "seeded-contacts"
EVENT_UID = "commonshelf-seeded-event"
CONTACT_UID = "commonshelf-seeded-contact"

EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Commonshelf//matrix//EN\r\n"
    "BEGIN:VEVENT\r\nUID:" + EVENT_UID + "\r\nDTSTAMP:20260101T090000Z\r\n"
    "DTSTART:20260301T100000Z\r\nDTEND:20260301T110000Z\r\n"
    "SUMMARY:Seeded by the Commonshelf matrix\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
CONTACT = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + CONTACT_UID + "\r\n"
    "FN:Seeded Contact\r\nN:Contact;Seeded;;;\r\nEMAIL:seeded@example.org\r\nEND:VCARD\r\n"
)
MKCALENDAR = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:set><D:prop><D:displayname>Seeded</D:displayname></D:prop></D:set></C:mkcalendar>"
)
MKADDRESSBOOK = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">'
    "<D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>"
    "<D:displayname>Seeded contacts</D:displayname></D:prop></D:set></D:mkcol>"
)


def _credentials(app: RunningStack) -> tuple[str, str]:
    user = app.exec("printenv RADICALE_ADMIN_USER || echo admin").strip() or "admin"
    password = app.exec("cat /run/secrets/admin_password").strip()
    return user, password


def _dav(app: RunningStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    """Any HTTP method through the same route `app.get` takes (behind the matrix's proxy
    that means its Host header, which `app.url` alone does not carry)."""
    sent = app.get("/.web/").request.headers
    headers = {"Host": sent["Host"]} if "Host" in sent else {}
    headers.update(kwargs.pop("headers", {}))
    kwargs.setdefault("timeout", 15)
    return requests.request(method, app.url(path), headers=headers, **kwargs)


def seed(app: RunningStack) -> None:
    user, password = _credentials(app)
    auth = (user, password)
    xml = {"Content-Type": "application/xml; charset=utf-8"}
    made = _dav(app, "MKCALENDAR", f"/{user}/{CALENDAR}/", auth=auth, data=MKCALENDAR, headers=xml)
    assert made.status_code == 201, f"MKCALENDAR answered {made.status_code}: {made.text[:300]}"
    put = _dav(
        app,
        "PUT",
        f"/{user}/{CALENDAR}/{EVENT_UID}.ics",
        auth=auth,
        data=EVENT,
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert put.status_code == 201, f"PUT event answered {put.status_code}: {put.text[:300]}"
    made = _dav(app, "MKCOL", f"/{user}/{BOOK}/", auth=auth, data=MKADDRESSBOOK, headers=xml)
    assert made.status_code == 201, f"MKCOL answered {made.status_code}: {made.text[:300]}"
    put = _dav(
        app,
        "PUT",
        f"/{user}/{BOOK}/{CONTACT_UID}.vcf",
        auth=auth,
        data=CONTACT,
        headers={"Content-Type": "text/vcard; charset=utf-8"},
    )
    assert put.status_code == 201, f"PUT contact answered {put.status_code}: {put.text[:300]}"


def verify(app: RunningStack) -> None:
    user, password = _credentials(app)
    auth = (user, password)
    event = _dav(app, "GET", f"/{user}/{CALENDAR}/{EVENT_UID}.ics", auth=auth)
    assert event.status_code == 200, f"GET event answered {event.status_code}"
    assert f"UID:{EVENT_UID}" in event.text
    assert "SUMMARY:Seeded by the Commonshelf matrix" in event.text
    contact = _dav(app, "GET", f"/{user}/{BOOK}/{CONTACT_UID}.vcf", auth=auth)
    assert contact.status_code == 200, f"GET contact answered {contact.status_code}"
    assert "FN:Seeded Contact" in contact.text
    listing = _dav(
        app, "PROPFIND", f"/{user}/", auth=auth, headers={"Depth": "1"},
        data='<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/>'
        "</D:prop></D:propfind>",
    )
    assert listing.status_code == 207, f"PROPFIND answered {listing.status_code}"
    assert f"/{user}/{CALENDAR}/" in listing.text and f"/{user}/{BOOK}/" in listing.text
    refused = _dav(app, "GET", f"/{user}/{CALENDAR}/{EVENT_UID}.ics", auth=(user, "wrong" + password))
    assert refused.status_code == 401, f"a wrong password got {refused.status_code}"
