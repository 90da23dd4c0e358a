"""The development outbox: `make run` needs no mail server, and the messages are one page away."""

from __future__ import annotations

import html
import re

from notify_helpers import free_port

from idp import create_app, notify
from idp.extensions import db, store
from idp.i18n import local_time

CONTEXT = {"code": "735104", "minutes": 10, "purpose": "contact.email"}


def test_outbox_page_shows_messages_as_a_person_reads_them(app, client) -> None:
    """R-C7: /dev/outbox shows subject, recipient, Taipei time and the text body (code included), newest first."""
    notify.send_mail("first@example.edu.tw", "otp_contact", **CONTEXT)
    notify.send_sms("0912345678", "otp_password_reset", **{**CONTEXT, "code": "204861"})
    _sms, mail = notify.outbox()

    resp = client.get("/dev/outbox")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    page = html.unescape(resp.get_data(as_text=True))
    assert '<html lang="zh-Hant-TW">' in page and "lang=en" in page  # zh-TW page with its English switch
    assert mail.subject in page and "first@example.edu.tw" in page and "735104" in page
    assert "0912345678" in page and "204861" in page
    assert local_time(mail.created_at, seconds=True) in page
    assert page.index("204861") < page.index("735104"), "newest first"
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page)

    english = client.get("/dev/outbox?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Outbox (development)" in english


def test_taipei_time_is_utc_plus_eight(app) -> None:
    """R-C7: times on the outbox are Taipei time (UTC+8), as people there read them."""
    import datetime as dt


    assert local_time(dt.datetime(2026, 12, 2, 2, 47, 52, tzinfo=dt.UTC), seconds=True) == "2026-12-02 10:47:52"


def test_outbox_page_is_not_found_in_production(app, client, use_settings) -> None:
    """R-N3: the outbox (codes in clear) does not exist in production: 404 like any unknown address."""
    notify.send_mail("first@example.edu.tw", "otp_contact", **CONTEXT)
    use_settings(env="production")
    resp = client.get("/dev/outbox")
    assert resp.status_code == 404
    assert "735104" not in resp.get_data(as_text=True)


def test_outbox_messages_expire_after_a_day(app) -> None:
    """R-C7: each message is kept a day, then the store forgets it (codes do not pile up)."""
    notify.send_mail("first@example.edu.tw", "otp_contact", **CONTEXT)
    [key] = store().smembers("notify:outbox")
    assert 86000 < store().ttl(key) <= 86400


def test_outbox_is_shared_by_every_process(app, app_config) -> None:
    """R-C7: a message kept by one app process is read by another (the outbox lives in the shared store)."""
    import pytest

    if not app_config.get("redis_url"):
        pytest.skip("the in-process store is one process's by design (embedded default)")
    other = create_app({**app_config, "smtp_port": free_port()})
    try:
        with other.app_context():
            notify.send_mail("other@example.edu.tw", "otp_contact", **CONTEXT)
        assert [m.to for m in notify.outbox()] == ["other@example.edu.tw"]
    finally:
        with other.app_context():
            db.engine.dispose()
