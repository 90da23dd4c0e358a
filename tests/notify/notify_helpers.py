"""Helpers for the mail and SMS tests: a mailbox for a real SMTP server on loopback, a free port."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import socket
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_USER = "idp-mailer"
SMTP_PASSWORD = "relay-Password-7f3e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """An aiosmtpd handler that keeps what it receives, or refuses every recipient when told to."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.refuse = False
        self.logins: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
              and auth_data.password == SMTP_PASSWORD.encode())
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    @property
    def messages(self) -> list[EmailMessage]:
        """The mails as a mail program reads them (MIME decoded)."""
        return [email.message_from_bytes(e.original_content, policy=email.policy.default) for e in self.received]


@dataclasses.dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox
