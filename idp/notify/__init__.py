"""Mail and text messages leave the service here (R-C7, R-A1): one ``Sender`` protocol, three senders.

Owns: ``send_mail`` / ``send_sms`` (render ``templates/notify/<template>.*`` in the person's
language and hand a neutral ``Message`` to the configured sender), the senders (``smtp`` for
production mail, ``outbox`` for development and tests, ``log`` for SMS until a gateway adapter
exists), the development outbox page ``/dev/outbox`` and ``DeliveryFailed``.

Bodies carry one-time codes, so no sender ever logs a body, and addresses reach logs masked
(``s***@example.edu.tw``, ``09****5678``). Must not import feature packages (accounts, login,
oidc, identity, admin, ...): they call ``idp.notify``, never the other way round.

    from idp import notify
    notify.send_mail("pupil@example.edu.tw", "otp_contact", code="123456", minutes=10)
"""

from __future__ import annotations

from flask import Flask

from idp.notify.base import DeliveryFailed, Message, Sender, mask_address
from idp.notify.services import outbox, send_mail, send_sms

__all__ = ["DeliveryFailed", "Message", "Sender", "init_app", "mask_address", "outbox", "send_mail", "send_sms"]


def init_app(app: Flask) -> None:
    from idp.notify import senders
    from idp.notify.views import bp

    senders.init_app(app)
    app.register_blueprint(bp)
