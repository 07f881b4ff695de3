"""Seed hook for the standard matrix, and a small XMPP-over-BOSH client shared with the
tests: accounts made with `prosodyctl register`, then everything else the way an XMPP client
does it, over BOSH (XEP-0124/0206) on the app's HTTP port through `app.url`.

Seeded: alice's roster (bob), a note in alice's private XML storage (XEP-0049) and a chat
message from alice to bob while bob is offline, which bob's message archive (XEP-0313)
keeps. verify() reads all three back as alice and bob."""

from __future__ import annotations

import base64
import itertools
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import requests

from commonshelf.harness import RunningStack

BOSH = "http://jabber.org/protocol/httpbind"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
MAM = "urn:xmpp:mam:2"


def send(app: RunningStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    """Any HTTP request to the app, with the Host header `app.get` uses.

    Behind the matrix's proxy the app is routed by its hostname, but `app.url()` alone
    carries none; `app.get` does, so the header is taken from one of its requests. A proxy
    that cannot reach a task just replaced answers 502-504 for a moment: tried again.
    """
    host = app.get("/http-bind").request.headers.get("Host")
    headers = {**({"Host": str(host)} if host else {}), **kwargs.pop("headers", {})}
    kwargs.setdefault("timeout", 60)
    deadline = time.monotonic() + 60
    while True:
        answer = requests.request(method, app.url(path), headers=headers, **kwargs)
        if answer.status_code not in (502, 503, 504) or time.monotonic() > deadline:
            return answer
        time.sleep(1)


def domain(app: RunningStack) -> str:
    """The XMPP domain the server runs (the DOMAIN setting)."""
    return app.exec("printenv DOMAIN").strip()


def register(app: RunningStack, user: str, password: str) -> str:
    """Make an account the way an operator does; returns its JID."""
    host = domain(app)
    app.exec(["prosodyctl", "register", user, host, password])
    return f"{user}@{host}"


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class LoginFailed(AssertionError):
    pass


class Bosh:
    """One XMPP session over BOSH: log in, send stanzas, collect what the server sends."""

    def __init__(self, app: RunningStack, jid: str, password: str, wait: int = 2) -> None:
        self.app = app
        self.jid = jid
        self.user, self.domain = jid.split("@", 1)
        self.password = password
        self.wait = wait
        self.rid = random.randint(10**6, 10**9)
        self.sid = ""
        self.inbox: list[ET.Element] = []
        self.bound = ""
        self.features: ET.Element | None = None
        self._ids = itertools.count(1)

    def _post(self, inner: str = "", **attrs: str) -> ET.Element:
        self.rid += 1
        extra = "".join(f" {key}={quoteattr(value)}" for key, value in attrs.items())
        sid = f" sid={quoteattr(self.sid)}" if self.sid else ""
        body = (
            f"<body rid='{self.rid}'{sid} xmlns='{BOSH}' "
            f"xmlns:xmpp='urn:xmpp:xbosh'{extra}>{inner}</body>"
        )
        answer = send(
            self.app,
            "POST",
            "/http-bind",
            data=body.encode(),
            headers={"Content-Type": "text/xml; charset=utf-8"},
        )
        assert answer.status_code == 200, f"BOSH answered {answer.status_code}: {answer.text}"
        root = ET.fromstring(answer.content)
        assert root.get("type") != "terminate", f"BOSH session ended: {answer.text}"
        return root

    def _until(self, found: Callable[[ET.Element], bool], seconds: float = 20) -> ET.Element:
        """Poll until the server sends a child that `found` accepts (others go to the inbox)."""
        deadline = time.monotonic() + seconds
        pending: list[ET.Element] = []
        while True:
            for child in pending:
                if found(child):
                    return child
                self.inbox.append(child)
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.jid}: nothing expected came within {seconds}s")
            pending = list(self._post())

    def login(self) -> Bosh:
        opened = self._post(
            to=self.domain,
            content="text/xml; charset=utf-8",
            hold="1",
            ver="1.6",
            wait=str(self.wait),
            **{"xml:lang": "en", "xmpp:version": "1.0"},
        )
        self.sid = opened.get("sid") or ""
        assert self.sid, f"no BOSH session: {ET.tostring(opened)!r}"
        features = [c for c in opened if local(c.tag) == "features"]
        if not features:
            features = [self._until(lambda c: local(c.tag) == "features")]
        self.features = features[0]
        plain = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
        answer = self._post(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{plain}</auth>")
        children = list(answer)
        outcome = (
            children[0] if children else self._until(lambda c: c.tag.startswith(f"{{{SASL}}}"))
        )
        if local(outcome.tag) != "success":
            raise LoginFailed(f"{self.jid}: {ET.tostring(outcome).decode()}")
        restarted = self._post(to=self.domain, **{"xml:lang": "en", "xmpp:restart": "true"})
        if not any(local(c.tag) == "features" for c in restarted):
            self._until(lambda c: local(c.tag) == "features")
        bound = self.iq(
            "set",
            "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>shelf</resource></bind>",
        )
        self.bound = bound.findtext(".//{urn:ietf:params:xml:ns:xmpp-bind}jid") or ""
        assert self.bound.startswith(self.jid + "/"), self.bound
        return self

    def iq(self, kind: str, payload: str, to: str = "") -> ET.Element:
        """Send an iq and return its result (asserting it is not an error)."""
        ident = f"iq{next(self._ids)}"
        target = f" to={quoteattr(to)}" if to else ""
        pending = list(
            self._post(
                f"<iq xmlns='jabber:client' type='{kind}' id='{ident}'{target}>{payload}</iq>"
            )
        )
        deadline = time.monotonic() + 20
        while True:
            for child in pending:
                if local(child.tag) == "iq" and child.get("id") == ident:
                    assert child.get("type") == "result", ET.tostring(child).decode()
                    return child
                self.inbox.append(child)
            assert time.monotonic() < deadline, f"{self.jid}: no answer to {ident}"
            pending = list(self._post())

    def presence(self) -> None:
        self.inbox.extend(self._post("<presence xmlns='jabber:client'/>"))

    def message(self, to: str, text: str) -> None:
        stanza = (
            f"<message xmlns='jabber:client' to={quoteattr(to)} type='chat'>"
            f"<body>{escape(text)}</body></message>"
        )
        self.inbox.extend(self._post(stanza))

    def receive(self, text: str, seconds: float = 20) -> ET.Element:
        """The chat message with this body (already received, or the next ones)."""

        def wanted(child: ET.Element) -> bool:
            return local(child.tag) == "message" and child.findtext("{jabber:client}body") == text

        for child in self.inbox:
            if wanted(child):
                return child
        return self._until(wanted, seconds)

    def archived(self, with_jid: str) -> list[str]:
        """Bodies of the archived messages exchanged with `with_jid` (XEP-0313 query)."""
        query = f"q{next(self._ids)}"
        form = (
            "<x xmlns='jabber:x:data' type='submit'>"
            f"<field var='FORM_TYPE' type='hidden'><value>{MAM}</value></field>"
            f"<field var='with'><value>{escape(with_jid)}</value></field></x>"
        )
        self.iq("set", f"<query xmlns='{MAM}' queryid='{query}'>{form}</query>")
        bodies = []
        for child in self.inbox:
            result = child.find(f"{{{MAM}}}result")
            if (
                local(child.tag) == "message"
                and result is not None
                and result.get("queryid") == query
            ):
                body = result.findtext(".//{jabber:client}body")
                if body is not None:
                    bodies.append(body)
        return bodies

    def roster(self) -> set[str]:
        answer = self.iq("get", "<query xmlns='jabber:iq:roster'/>")
        return {str(item.get("jid")) for item in answer.iter("{jabber:iq:roster}item")}

    def close(self) -> None:
        self.rid += 1
        body = f"<body rid='{self.rid}' sid={quoteattr(self.sid)} type='terminate' xmlns='{BOSH}'/>"
        send(self.app, "POST", "/http-bind", data=body.encode())


ALICE, BOB = "seeded-alice", "seeded-bob"
ALICE_PASSWORD, BOB_PASSWORD = "alice-seeded-by-the-matrix", "bob-seeded-by-the-matrix"
NOTE = "Seeded by the Commonshelf matrix"
MESSAGE = "Hello Bob, this waits for you."
PRIVATE = "<note xmlns='https://commonshelf.invalid/seed'>{}</note>"


def seed(app: RunningStack) -> None:
    alice = register(app, ALICE, ALICE_PASSWORD)
    bob = register(app, BOB, BOB_PASSWORD)
    session = Bosh(app, alice, ALICE_PASSWORD).login()
    session.iq("set", f"<query xmlns='jabber:iq:roster'><item jid='{bob}' name='Bob'/></query>")
    session.iq("set", f"<query xmlns='jabber:iq:private'>{PRIVATE.format(escape(NOTE))}</query>")
    session.presence()
    session.message(bob, MESSAGE)  # bob is offline: stored, and archived for him
    session.close()


def verify(app: RunningStack) -> None:
    host = domain(app)
    alice, bob = f"{ALICE}@{host}", f"{BOB}@{host}"
    session = Bosh(app, alice, ALICE_PASSWORD).login()
    assert bob in session.roster()
    stored = session.iq("get", f"<query xmlns='jabber:iq:private'>{PRIVATE.format('')}</query>")
    assert stored.findtext(".//{https://commonshelf.invalid/seed}note") == NOTE
    session.close()
    session = Bosh(app, bob, BOB_PASSWORD).login()
    assert MESSAGE in session.archived(alice)
    session.close()
