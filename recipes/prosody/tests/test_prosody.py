"""Prosody: accounts made with prosodyctl log in over BOSH and chat, registration is closed,
c2s offers STARTTLS with the generated certificate, and accounts, offline messages and the
certificate survive a restart."""

from __future__ import annotations

import socket
import ssl
import uuid

import pytest
from hooks import Bosh, LoginFailed, domain, register  # type: ignore[import-not-found]

from commonshelf.harness import RunningStack
from commonshelf.recipe import Recipe


def user(prefix: str) -> tuple[str, str]:
    """A fresh user name and password for one test."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex


def test_health_path_is_the_bosh_endpoint(app: RunningStack, recipe: Recipe) -> None:
    health = app.get(recipe.main.health)
    assert health.status_code == 200
    assert "BOSH" in health.text


def test_runs_the_declared_upstream_version(app: RunningStack, recipe: Recipe) -> None:
    assert f"Prosody {recipe.upstream_version}" in app.exec("prosodyctl about 2>/dev/null")


def test_runs_unprivileged(app: RunningStack) -> None:
    assert app.exec("id -un").strip() == "prosody"
    assert app.exec("awk '/^Uid:/ {print $2}' /proc/1/status").strip() != "0"  # prosody itself


def test_the_domain_comes_from_the_setting(app: RunningStack, recipe: Recipe) -> None:
    assert domain(app) == recipe.manifest["env"]["DOMAIN"]["default"]
    config = app.exec("cat /etc/prosody/prosody.cfg.lua")
    assert f'VirtualHost "{domain(app)}"' in config


def test_two_users_chat_over_bosh(app: RunningStack) -> None:
    (alice_name, alice_pw), (bob_name, bob_pw) = user("alice"), user("bob")
    alice = Bosh(app, register(app, alice_name, alice_pw), alice_pw).login()
    bob = Bosh(app, register(app, bob_name, bob_pw), bob_pw).login()
    alice.presence()
    bob.presence()
    alice.message(bob.jid, "Hello Bob!")
    received = bob.receive("Hello Bob!")
    assert str(received.get("from")).startswith(alice.jid + "/")
    bob.message(alice.jid, "Hi Alice.")
    alice.receive("Hi Alice.")
    alice.close()
    bob.close()


def test_a_wrong_password_is_refused(app: RunningStack) -> None:
    name, password = user("mallory")
    jid = register(app, name, password)
    with pytest.raises(LoginFailed, match="not-authorized"):
        Bosh(app, jid, password + "-wrong").login()


def test_registration_is_closed_by_default(app: RunningStack) -> None:
    assert app.exec("printenv ALLOW_REGISTRATION").strip() == "false"
    name, password = user("carol")
    session = Bosh(app, register(app, name, password), password).login()
    assert session.features is not None
    offered = {child.tag for child in session.features}
    assert "{http://jabber.org/features/iq-register}register" not in offered
    assert "allow_registration = false" in app.exec("cat /etc/prosody/prosody.cfg.lua")
    session.close()


def c2s_certificate(app: RunningStack) -> bytes:
    """Open an XMPP client stream on port 5222, require STARTTLS, return the peer's cert."""
    networks = app.main.docker_container.attrs["NetworkSettings"]["Networks"]
    address = next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))
    host = domain(app)
    with socket.create_connection((address, 5222), timeout=10) as raw:
        raw.sendall(
            f"<?xml version='1.0'?><stream:stream to='{host}' version='1.0' "
            "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>".encode()
        )
        seen = b""
        while b"</stream:features>" not in seen:
            chunk = raw.recv(4096)
            assert chunk, f"stream closed: {seen!r}"
            seen += chunk
        assert b"urn:ietf:params:xml:ns:xmpp-tls" in seen and b"<required" in seen, seen
        raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        assert b"<proceed" in raw.recv(4096)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # self-signed: compared by fingerprint below
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der
    return der


def test_c2s_offers_starttls_with_the_generated_certificate(app: RunningStack) -> None:
    host = domain(app)
    served = c2s_certificate(app)
    stored = app.exec(
        f"openssl x509 -in /var/lib/prosody/certs/{host}.crt -outform DER | od -An -tx1 -v"
    )
    assert bytes.fromhex(stored.replace(" ", "").replace("\n", "")) == served
    subject = app.exec(
        f"openssl x509 -in /var/lib/prosody/certs/{host}.crt -noout -ext subjectAltName"
    )
    assert f"DNS:{host}" in subject and f"DNS:*.{host}" in subject


def test_accounts_offline_messages_and_certificate_survive_a_restart(app: RunningStack) -> None:
    (alice_name, alice_pw), (dave_name, dave_pw) = user("alice"), user("dave")
    alice = Bosh(app, register(app, alice_name, alice_pw), alice_pw).login()
    dave = register(app, dave_name, dave_pw)
    alice.presence()
    alice.message(dave, "Waiting for you across a restart.")  # dave is offline
    alice.close()
    certificate = c2s_certificate(app)

    app.restart()

    session = Bosh(app, dave, dave_pw).login()
    session.presence()  # offline messages are delivered on the first presence
    waiting = session.receive("Waiting for you across a restart.")
    assert str(waiting.get("from")).startswith(alice_name + "@")
    session.close()
    assert c2s_certificate(app) == certificate  # made once, kept in the volume
