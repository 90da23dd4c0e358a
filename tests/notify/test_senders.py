"""Mail leaves through SMTP in production, stays in the outbox in development, and is only logged
(masked, without its body) by the log sender; a relay that fails gives people a "try again later"."""

from __future__ import annotations

import logging

import pytest
from flask import Blueprint
from notify_helpers import SMTP_PASSWORD, SMTP_USER, free_port

from idp import create_app, notify
from idp.extensions import db

CONTEXT = {"code": "480213", "minutes": 10, "purpose": "contact.email"}


def _smtp(use_settings, port: int, **more) -> None:
    use_settings(mail_sender="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, smtp_timeout=5.0,
                 **more)


def test_smtp_sender_delivers_a_bilingual_utf8_mail(app, smtp_server, use_settings) -> None:
    """R-C7: a code mail reaches a real SMTP server's mailbox: Chinese subject and body in UTF-8, text + HTML."""
    _smtp(use_settings, smtp_server.port)
    notify.send_mail("pupil@example.edu.tw", "otp_contact", **CONTEXT)

    [envelope] = smtp_server.mailbox.received
    assert envelope.rcpt_tos == ["pupil@example.edu.tw"]
    [mail] = smtp_server.mailbox.messages
    assert mail["To"] == "pupil@example.edu.tw"
    assert mail["Subject"].startswith("教育雲端帳號：備用信箱驗證碼")
    assert "480213" not in mail["Subject"]
    assert "no-reply@example.edu.tw" in mail["From"]
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text.get_content_charset() == "utf-8" and html.get_content_charset() == "utf-8"
    body = text.get_content()
    assert "480213" in body and "10 分鐘內有效" in body and "絕不會向您索取驗證碼" in body
    assert body.index("您好") < body.index("Hello"), "zh-TW first, English under it"
    assert "<strong>480213</strong>" in html.get_content() and 'lang="zh-Hant-TW"' in html.get_content()


def test_smtp_sender_logs_in_with_the_password_from_the_environment(app, smtp_server, use_settings, monkeypatch,
                                                                   caplog) -> None:
    """R-N3: the relay password comes from the variable smtp_password_env names and never reaches a log line."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("IDP_TEST_SMTP_SECRET", SMTP_PASSWORD)
    _smtp(use_settings, smtp_server.port, smtp_username=SMTP_USER, smtp_password_env="IDP_TEST_SMTP_SECRET")
    notify.send_mail("teacher@example.edu.tw", "otp_password_reset", **CONTEXT)
    assert smtp_server.mailbox.logins == [SMTP_USER]
    assert len(smtp_server.mailbox.received) == 1
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("idp")]
    assert any("mail to t***@example.edu.tw sent" in line for line in ours)
    assert not any(SMTP_PASSWORD in line for line in ours)


def test_smtp_sender_without_its_password_sends_nothing(app, smtp_server, use_settings, monkeypatch) -> None:
    """R-N3: a user name without the password variable set is a delivery failure, not a clear-text attempt."""
    monkeypatch.delenv("IDP_TEST_SMTP_SECRET", raising=False)
    _smtp(use_settings, smtp_server.port, smtp_username=SMTP_USER, smtp_password_env="IDP_TEST_SMTP_SECRET")
    with pytest.raises(notify.DeliveryFailed):
        notify.send_mail("teacher@example.edu.tw", "otp_password_reset", **CONTEXT)
    assert smtp_server.mailbox.received == []


def test_refusing_relay_gives_delivery_failed_and_logs_only_the_type(app, smtp_server, use_settings, caplog) -> None:
    """R-C7: a relay that refuses the recipient gives DeliveryFailed (503); the log names the error type, no body."""
    caplog.set_level(logging.DEBUG)
    smtp_server.mailbox.refuse = True
    _smtp(use_settings, smtp_server.port)
    with pytest.raises(notify.DeliveryFailed) as failed:
        notify.send_mail("pupil@example.edu.tw", "otp_contact", **CONTEXT)
    assert failed.value.status == 503 and failed.value.code == "delivery_failed"
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("idp")]
    assert "mail to p***@example.edu.tw not sent: SMTPRecipientsRefused" in lines
    assert not any("480213" in line or "pupil@" in line or "550" in line for line in lines)


def test_unreachable_relay_gives_delivery_failed(app, use_settings) -> None:
    """R-C7: no relay listening: DeliveryFailed, not a 500."""
    _smtp(use_settings, free_port())
    with pytest.raises(notify.DeliveryFailed):
        notify.send_mail("pupil@example.edu.tw", "otp_contact", **CONTEXT)


def test_starttls_is_never_skipped(app, smtp_server, use_settings) -> None:
    """R-N3: with smtp_starttls on, a relay that does not offer STARTTLS gets nothing in clear text."""
    _smtp(use_settings, smtp_server.port)
    use_settings(smtp_starttls=True)
    with pytest.raises(notify.DeliveryFailed):
        notify.send_mail("pupil@example.edu.tw", "otp_contact", **CONTEXT)
    assert smtp_server.mailbox.received == []


def test_delivery_failure_in_a_request_is_a_503_page(app_config) -> None:
    """R-C7: when the relay fails during a request the person gets a 503 "try again later" page, with Retry-After."""
    web = create_app({**app_config, "mail_sender": "smtp", "smtp_host": "127.0.0.1", "smtp_port": free_port(),
                      "smtp_starttls": False})
    bp = Blueprint("notify_probe", __name__)

    @bp.get("/probe/send")
    def send():
        notify.send_mail("pupil@example.edu.tw", "otp_contact", **CONTEXT)
        return "sent"

    web.register_blueprint(bp)
    try:
        resp = web.test_client().get("/probe/send")
        assert resp.status_code == 503
        assert resp.headers["Retry-After"]
        page = resp.get_data(as_text=True)
        assert 'data-error="delivery_failed"' in page and "480213" not in page
    finally:
        with web.app_context():
            db.engine.dispose()


def test_log_sender_writes_the_masked_address_and_subject_never_the_body(app, use_settings, caplog) -> None:
    """R-N3: the log sender's one INFO line has the masked address and the subject, never the body (it holds codes)."""
    caplog.set_level(logging.DEBUG)
    use_settings(mail_sender="log", sms_sender="log")
    notify.send_mail("student01@example.edu.tw", "otp_member_signup", **CONTEXT)
    notify.send_sms("0912345678", "otp_contact", **CONTEXT)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("mail to s***@example.edu.tw subject 教育雲端：會員註冊驗證碼") for line in lines)
    assert any(line.startswith("sms to 09****5678") for line in lines)
    assert not any("480213" in line or "student01" in line or "0912345678" in line for line in lines)
    assert notify.outbox() == []


def test_mail_is_written_in_the_language_asked_for(app) -> None:
    """R-C7: send_mail writes in the given locale first (English here), then the other language under it."""
    notify.send_mail("pupil@example.edu.tw", "otp_member_signup", locale="en", **CONTEXT)
    [message] = notify.outbox()
    assert message.subject.startswith("Education Cloud: member sign-up code")
    assert message.text.index("Hello") < message.text.index("您好")
    assert message.html.startswith('<!doctype html>\n<html lang="en">')


def test_mail_follows_the_page_language_by_default(app) -> None:
    """R-C7: without a locale, the mail is in the language of the page the person is on."""
    with app.test_request_context("/?lang=en"):
        app.preprocess_request()
        notify.send_mail("pupil@example.edu.tw", "otp_contact", **CONTEXT)
    with app.test_request_context("/"):
        app.preprocess_request()
        notify.send_mail("parent@example.edu.tw", "otp_contact", **CONTEXT)
    parent, pupil = notify.outbox()
    assert pupil.subject.startswith("Education Cloud Account") and parent.subject.startswith("教育雲端帳號")


def test_sms_is_one_short_text_in_one_language(app) -> None:
    """R-C7: an SMS carries the code, what it is for and its lifetime, in the person's language only."""
    notify.send_sms("0912345678", "otp_contact", **CONTEXT)
    notify.send_sms("0912345678", "otp_password_reset", locale="en", **CONTEXT)
    english, chinese = notify.outbox()
    assert chinese.kind == "sms" and chinese.to == "0912345678" and chinese.html is None
    assert "480213" in chinese.text and "10 分鐘" in chinese.text and "Education" not in chinese.text
    assert english.text.startswith("Education Cloud Account: your password reset code is 480213")
    assert len(chinese.text) <= 70, "one SMS segment in UCS-2"


def test_message_repr_hides_the_body(app) -> None:
    """R-N3: a Message that ends up in a log line or a traceback does not carry its body (and code) along."""
    notify.send_mail("pupil@example.edu.tw", "otp_contact", **CONTEXT)
    [message] = notify.outbox()
    assert "480213" in message.text and "480213" not in repr(message)


def test_recipient_with_a_line_break_is_refused_before_any_sender(app) -> None:
    """R-N3: an address carrying a line break (a header injection) is refused before a sender sees it."""
    with pytest.raises(ValueError):
        notify.send_mail("pupil@example.edu.tw\r\nBcc: someone@example.com", "otp_contact", **CONTEXT)
    assert notify.outbox() == []


@pytest.mark.parametrize("changes", [{"mail_sender": "pigeon"}, {"sms_sender": "smtp"}, {"smtp_port": 0},
                                     {"mail_from": "nobody"}, {"otp_max_tries": 0}])
def test_sender_settings_are_checked_at_start_up(changes) -> None:
    """R-N3: an unknown sender or an unusable SMTP/code setting stops the start with the key named."""
    from idp.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=next(iter(changes))):
        load_settings({"IDP_CONFIG": "testing", **changes}, environ={})
