"""The neutral message, the sender protocol and the one failure every sender reports (DESIGN rule 5)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Literal, Protocol

from flask_babel import lazy_gettext as _l

from idp.db import utcnow
from idp.errors import ServiceUnavailable

Kind = Literal["mail", "sms"]


@dataclasses.dataclass(frozen=True)
class Message:
    """One mail or text message as its reader sees it, whatever carries it.

    ``text`` and ``html`` are left out of ``repr``: they hold one-time codes, and a message that
    ends up in a log line or a traceback must not take its code along."""

    to: str
    subject: str
    text: str = dataclasses.field(repr=False)
    html: str | None = dataclasses.field(default=None, repr=False)
    kind: Kind = "mail"
    created_at: dt.datetime = dataclasses.field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {"to": self.to, "subject": self.subject, "text": self.text, "html": self.html, "kind": self.kind,
                "created_at": self.created_at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        return cls(to=data["to"], subject=data["subject"], text=data["text"], html=data.get("html"),
                   kind=data.get("kind", "mail"), created_at=dt.datetime.fromisoformat(data["created_at"]))


class Sender(Protocol):
    """Delivers one message or raises ``DeliveryFailed`` (having logged the failure's type only).

    An SMS gateway is a later adapter of this protocol: a class taking the settings, registered
    under its name in ``app.extensions["idp.senders"]`` and chosen with ``sms_sender``."""

    def send(self, message: Message) -> None: ...


class DeliveryFailed(ServiceUnavailable):
    """The message could not be handed over (mail relay down or refusing, store unreachable): the
    person is asked to try again later (503 with Retry-After); nothing they typed was wrong."""

    code = "delivery_failed"
    message = _l("We could not send the message just now. Please try again in a few minutes.")


def mask_address(address: str) -> str:
    """An e-mail address or phone number as logs and audit rows show it: enough for a person to
    recognise their own (``s***@example.edu.tw``, ``09****5678``), too little to contact them."""
    address = (address or "").strip()
    if "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if len(address) >= 8:
        return f"{address[:2]}{'*' * (len(address) - 6)}{address[-4:]}"
    return "*" * max(len(address) - 2, 1) + address[-2:]
