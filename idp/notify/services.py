"""Render a message in the person's language and hand it to the configured sender."""

from __future__ import annotations

from typing import Any

from flask import has_request_context, render_template
from flask_babel import force_locale, get_locale

from idp import i18n
from idp.extensions import settings
from idp.notify import senders
from idp.notify.base import Message


def _locale(asked: str | None) -> str:
    """The language to write in: the one asked for, else the page's (the person is reading it
    right now), else the service's default."""
    if asked:
        chosen = i18n.normalise(asked)
        if chosen in settings().locales:
            return chosen
    if has_request_context():
        current = get_locale()
        if current is not None and str(current) in settings().locales:
            return str(current)
    return settings().default_locale


def _recipient(to: str) -> str:
    """The address trimmed; one with a line break or other control character is a caller's bug
    (a header injection waiting to happen), refused before any sender sees it."""
    to = (to or "").strip()
    if not to or any(ord(ch) < 32 or ord(ch) == 127 for ch in to):
        raise ValueError("a recipient must be one address without control characters")
    return to


def _render(name: str, locale: str, context: dict[str, Any]) -> str:
    return render_template(f"notify/{name}", **context, locale=locale, issuer=settings().issuer)


def send_mail(to: str, template: str, *, locale: str | None = None, **context: Any) -> None:
    """Send ``templates/notify/<template>.subject.txt`` / ``.txt`` / ``.html`` to ``to``.

    Raises ``DeliveryFailed`` (503, "try again later") when the sender fails; the caller decides
    what that means for its flow (a code that was not sent is not kept, see ``security.otp``)."""
    locale = _locale(locale)
    with force_locale(locale):
        subject = " ".join(_render(f"{template}.subject.txt", locale, context).split())  # one header line
        text = _render(f"{template}.txt", locale, context)
        html = _render(f"{template}.html", locale, context)
    senders.sender("mail").send(Message(to=_recipient(to), subject=subject, text=text, html=html, kind="mail"))


def send_sms(to: str, template: str, *, locale: str | None = None, **context: Any) -> None:
    """Send ``templates/notify/<template>.sms.txt`` to the mobile number ``to`` (one short text)."""
    locale = _locale(locale)
    with force_locale(locale):
        text = _render(f"{template}.sms.txt", locale, context).strip()
    senders.sender("sms").send(Message(to=_recipient(to), subject="", text=text, kind="sms"))


def outbox() -> list[Message]:
    """Messages the ``outbox`` sender kept in the last day, most recent first (development and
    tests: with the ``smtp`` or ``log`` senders nothing is kept and the list is empty)."""
    return senders.stored_messages()
