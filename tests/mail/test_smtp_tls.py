"""Mail through an SMTP server as mail providers run them: STARTTLS required, a user and
password only over it, a certificate the gateway must check. A real aiosmtpd server with
a certificate from a test CA (made with openssl); the gateway trusts that CA the way an
operator would, through OpenSSL's SSL_CERT_FILE. An answer goes out over TLS, signed in;
a wrong password or a certificate the gateway cannot check delivers nothing and leaves
the mail failed or waiting, with the reason in the console."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.conftest import add_agent, agent_console
from tests.mail.conftest import leave_message, mail_settings, shopper
from tests.mail.test_inbound import SAM, answered_ticket
from tests.mailbox import Mailbox

LOGIN = ("shop", "a-long-smtp-password")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA (ca.pem) and a certificate it signed for 127.0.0.1 (server.pem, key.pem)."""
    folder = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=shopchat test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=folder)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "key.pem", "-out", "server.csr", cwd=folder)
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "server.pem",
            cwd=folder)
    return folder


@pytest.fixture
def mailbox(certificates: Path) -> Iterator[Mailbox]:
    """This module's SMTP server: STARTTLS with the test CA's certificate, and a login."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "server.pem", certificates / "key.pem")
    with Mailbox(tls=context, login=LOGIN) as box:
        yield box


@pytest.fixture
def tls_gateway(scripted_gateway_with: Callable[..., Any], mailbox: Mailbox
                ) -> Callable[..., Any]:
    """A gateway that mails through ``mailbox`` with STARTTLS and the login."""
    return lambda **overrides: scripted_gateway_with(**mail_settings(
        mailbox.port, **{"smtp_starttls": True, "smtp_username": LOGIN[0],
                         "smtp_password": SecretStr(LOGIN[1]), **overrides}))


async def test_an_answer_goes_out_over_starttls_signed_in(
    tls_gateway: Callable[..., Any], mailbox: Mailbox, certificates: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))
    # The server takes mail only after STARTTLS and a sign-in: arriving is the proof.
    async with answered_ticket(tls_gateway, mailbox) as (_gateway, _cleo, _c, _t, mail):
        assert "A new pole is on its way." in mail.get_body(("plain",)).get_content()
    assert mailbox.refused_logins == 0


@pytest.mark.parametrize("problem", ["wrong password", "unknown certificate authority"])
async def test_nothing_is_delivered_without_the_right_password_and_a_checked_certificate(
    problem: str, tls_gateway: Callable[..., Any], mailbox: Mailbox, certificates: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    overrides: dict[str, Any] = {}
    if problem == "wrong password":
        monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))
        overrides["smtp_password"] = SecretStr("not-the-password")
    else:  # the system's CAs only: the server's certificate cannot be checked
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    async with tls_gateway(**overrides) as gateway:
        add_agent(gateway.settings, "cleo@shop.example", "Cleo")
        async with shopper(gateway) as client:  # nobody online: the message form
            await leave_message(client, SAM, "My tent pole broke, order 10023.")
        async with agent_console(gateway.http, "cleo@shop.example") as cleo:
            state = await cleo.expect(lambda f: f["type"] == "state" and f["tickets"])
            await cleo.do("ticket_reply", ticket_id=state["tickets"][0]["id"],
                          client_id="r1", text="A new pole is on its way.")
            state = await cleo.expect(lambda f: f["type"] == "state" and bool(f["mail"])
                                      and f["mail"][0]["attempts"] >= 1)
            assert state["mail"][0]["error"]  # waiting for a retry, or given up, and why
    assert mailbox.messages == []
    if problem == "wrong password":
        assert mailbox.refused_logins >= 1
