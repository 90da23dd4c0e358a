"""The senders: ``smtp`` (production mail), ``outbox`` (development and tests), ``log`` (SMS for now).

Each is built from the settings when a message goes out (cheap: nothing is connected in advance),
so a process never holds a relay connection it does not use, and a test that swaps the settings
talks to its own server. ``app.extensions["idp.senders"]`` maps a setting's value to the class, so
an SMS gateway adapter later is one more entry.
"""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from flask import Flask, current_app

from idp.config import Settings
from idp.extensions import store
from idp.notify.base import DeliveryFailed, Message, Sender, mask_address
from idp.store import StoreUnavailable

log = logging.getLogger("idp.notify")

OUTBOX_LIFETIME = 86400  # a day: long enough to read, short enough that codes do not pile up
_OUTBOX_INDEX = "notify:outbox"
_OUTBOX_SEQUENCE = "notify:outbox:seq"


def email_message(message: Message, mail_from: str) -> EmailMessage:
    """The MIME mail: plain text first, HTML as the alternative, UTF-8 in base64 (safe through any
    relay, 8BITMIME or not), headers as RFC 5322 wants them (non-ASCII names encoded)."""
    mail = EmailMessage()
    mail["From"] = mail_from
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(message.created_at)
    mail["Message-ID"] = make_msgid(domain=parseaddr(mail_from)[1].rpartition("@")[2] or None)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders do not answer it
    mail.set_content(message.text, cte="base64")
    if message.html:
        mail.add_alternative(message.html, subtype="html", cte="base64")
    return mail


class SmtpSender:
    """Hands mail to the configured relay: STARTTLS with a checked certificate when asked (never a
    silent fall-back to clear text), a login when a user name is set (the password read from the
    environment variable ``smtp_password_env`` names, at send time, never kept or logged), and a
    time-out on every step so a stuck relay costs one request a 503, not a worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message: Message) -> None:
        s = self.settings
        if message.kind != "mail":
            raise ValueError("the SMTP sender carries mail only")
        password = ""
        if s.smtp_username:
            password = os.environ.get(s.smtp_password_env, "")
            if not password:
                log.error("mail not sent: the SMTP password variable %s is empty or not set", s.smtp_password_env)
                raise DeliveryFailed()
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    smtp.login(s.smtp_username, password)
                smtp.send_message(email_message(message, s.mail_from))
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            # The type only: a relay's reply can quote the message or the address back.
            log.error("mail to %s not sent: %s", mask_address(message.to), type(exc).__name__)
            raise DeliveryFailed() from None
        log.info("mail to %s sent", mask_address(message.to))


class OutboxSender:
    """Keeps messages in the service's store for a day instead of delivering them: the development
    server needs no mail server, ``/dev/outbox`` shows them, tests read them with ``notify.outbox()``.
    Being in the store (Redis when configured), any process can read what another one sent."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message: Message) -> None:
        try:
            n = store().incr(_OUTBOX_SEQUENCE, OUTBOX_LIFETIME, refresh=True)
            key = f"notify:outbox:{n:012d}:{secrets.token_hex(4)}"
            store().set_json(key, message.to_json(), OUTBOX_LIFETIME)
            store().sadd(_OUTBOX_INDEX, key, OUTBOX_LIFETIME)
        except StoreUnavailable as exc:
            log.error("%s to %s not kept: %s", message.kind, mask_address(message.to), type(exc).__name__)
            raise DeliveryFailed() from None
        log.info("%s to %s kept in the outbox", message.kind, mask_address(message.to))


class LogSender:
    """Writes one INFO line per message, the address masked, never the body (it holds codes), and
    delivers nothing: production's SMS sender until a gateway adapter exists."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message: Message) -> None:
        if message.kind == "mail":
            log.info("mail to %s subject %s", mask_address(message.to), message.subject)
        else:
            log.info("sms to %s (not delivered: no SMS gateway configured)", mask_address(message.to))


def stored_messages() -> list[Message]:
    """The outbox, most recent first (by the store's send counter, which every process shares)."""
    found = []
    for key in store().smembers(_OUTBOX_INDEX):
        data = store().get_json(key)
        if data is not None:  # expired messages leave their key in the index until it expires too
            found.append((key, Message.from_json(data)))
    found.sort(key=lambda item: item[0], reverse=True)
    return [message for _, message in found]


def sender(kind: str) -> Sender:
    """The configured sender of ``kind`` ("mail" or "sms")."""
    s: Settings = current_app.extensions["idp.settings"]
    name = s.mail_sender if kind == "mail" else s.sms_sender
    factory: Callable[[Settings], Sender] = current_app.extensions["idp.senders"][name]
    return factory(s)


def init_app(app: Flask) -> None:
    app.extensions["idp.senders"] = {"smtp": SmtpSender, "outbox": OutboxSender, "log": LogSender}
    s: Settings = app.extensions["idp.settings"]
    if s.is_production and "outbox" in (s.mail_sender, s.sms_sender):
        log.warning("mail_sender/sms_sender 'outbox' in production: messages stay in the store, nobody gets them")

