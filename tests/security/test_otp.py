"""One-time codes (idp.security.otp): 6 digits, 10 minutes, 5 tries, resend throttled, never in a log
line, an audit row or the store in clear; the development outbox holds them."""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import re
import socket
import time
from typing import Any

import pytest
from flask import Blueprint, jsonify, request

from idp import create_app, notify
from idp.db import commit
from idp.errors import InvalidField, RateLimited
from idp.extensions import db, store
from idp.security import audit, otp
from idp.security.models import AuditEvent

EMAIL = "student01@example.edu.tw"


@pytest.fixture
def use_settings(app, monkeypatch):
    def change(**changes: Any) -> None:
        monkeypatch.setitem(app.extensions, "idp.settings", dataclasses.replace(app.extensions["idp.settings"],
                                                                                **changes))

    return change


def code_in(message: notify.Message) -> str:
    """The code as the person reads it in the message."""
    return re.search(r"\b(\d{6})\b", message.text).group(1)


def last_code() -> str:
    return code_in(notify.outbox()[0])


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** 6:06d}"


def audit_rows(prefix: str = "otp.") -> list[AuditEvent]:
    db.session.flush()
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event.startswith(prefix))
                                   .order_by(AuditEvent.id)))


def test_right_code_verifies_once(app) -> None:
    """R-C7: the code sent to a backup e-mail proves it, once: the second use of the same code is refused."""
    challenge = otp.send_code("contact.email", EMAIL, "email")
    assert challenge.masked_target == "s***@example.edu.tw"
    assert 590 <= (challenge.expires_at.timestamp() - time.time()) <= 600
    [message] = notify.outbox()
    assert message.to == EMAIL and "10 分鐘內有效" in message.text and "絕不會向您索取驗證碼" in message.text
    code = code_in(message)
    assert otp.verify(challenge.id, code) == EMAIL
    with pytest.raises(otp.Expired):
        otp.verify(challenge.id, code)
    sent, verified = audit_rows()[:2]
    assert (sent.event, verified.event) == (audit.OTP_SENT, audit.OTP_VERIFIED)
    assert sent.data["target"] == verified.data["target"] == "s***@example.edu.tw"
    assert sent.data["purpose"] == "contact.email" and sent.data["channel"] == "email"


def test_wrong_codes_count_down_and_the_fifth_ends_the_challenge(app) -> None:
    """R-C7: each wrong code says how many tries are left; the 5th wrong one ends the challenge (429), the right
    code no longer works."""
    challenge = otp.send_code("password.reset", EMAIL, "email")
    code = last_code()
    left = []
    for _ in range(4):
        with pytest.raises(otp.WrongCode) as refused:
            otp.verify(challenge.id, wrong(code))
        left.append(refused.value.tries_left)
        assert refused.value.status == 400 and refused.value.data["tries_left"] == left[-1]
        assert refused.value.field == "code"
    assert left == [4, 3, 2, 1]
    assert "1 次" in str(refused.value.message)  # zh-TW first: "還可以再試 1 次"
    with pytest.raises(otp.TooManyTries) as ended:
        otp.verify(challenge.id, wrong(code))
    assert ended.value.status == 429
    with pytest.raises(otp.Expired):
        otp.verify(challenge.id, code)
    failures = [r for r in audit_rows() if r.event == audit.OTP_FAILED]
    assert [r.data.get("tries_left") for r in failures] == [4, 3, 2, 1, 0, None]
    assert failures[4].data["reason"] == "too_many_tries" and failures[5].data["reason"] == "expired"


def test_typing_slips_cost_no_try(app) -> None:
    """R-C7: full-width digits and spaces are read as the code; something that cannot be a code costs no try."""
    challenge = otp.send_code("contact.email", EMAIL, "email")
    code = last_code()
    with pytest.raises(otp.WrongCode) as refused:
        otp.verify(challenge.id, "12ab")
    assert refused.value.tries_left == 5
    full_width = "".join(chr(ord(d) + 0xFEE0) for d in code)
    assert otp.verify(challenge.id, f" {full_width[:3]} {full_width[3:]} ") == EMAIL


def test_code_expires_after_its_lifetime(app, use_settings) -> None:
    """R-C7: a code past its lifetime (10 minutes; 1 second here) is refused as expired, even the right one."""
    use_settings(otp_lifetime=1)
    challenge = otp.send_code("contact.email", EMAIL, "email")
    code = last_code()
    time.sleep(1.2)
    with pytest.raises(otp.Expired) as expired:
        otp.verify(challenge.id, code)
    assert expired.value.status == 400


def test_unknown_or_malformed_challenge_is_expired(app) -> None:
    """R-C7: a challenge id nobody issued (or garbage) reads as an expired code, never as a 500."""
    for challenge_id in ("x" * 32, "../../etc", "", "a" * 500):
        with pytest.raises(otp.Expired):
            otp.verify(challenge_id, "123456")


def test_a_code_works_only_for_its_purpose(app) -> None:
    """R-A1: a code sent for member sign-up does not reset a password (purpose checked when the caller names it)."""
    challenge = otp.send_code("member.signup", "parent@example.com", "email")
    [message] = notify.outbox()
    assert "註冊" in message.subject and "一般會員" in message.text
    code = last_code()
    with pytest.raises(otp.Expired):
        otp.verify(challenge.id, code, purpose="password.reset")
    assert otp.verify(challenge.id, code, purpose="member.signup") == "parent@example.com"


def test_sms_code_goes_to_the_normalised_mobile(app) -> None:
    """R-C7: a backup mobile typed with dashes or +886 gets one SMS; audit rows show it masked 09****5678."""
    challenge = otp.send_code("contact.mobile", "+886 912-345-678", "sms")
    [message] = notify.outbox()
    assert message.kind == "sms" and message.to == "0912345678" and "備用手機" in message.text
    assert challenge.masked_target == "09****5678"
    assert otp.verify(challenge.id, code_in(message)) == "0912345678"
    assert {r.data["target"] for r in audit_rows()} == {"09****5678"}


def test_bad_targets_are_refused_beside_their_field(app) -> None:
    """R-C7: an address or number that cannot be one is a message beside its field, and nothing is sent."""
    with pytest.raises(InvalidField) as bad_mail:
        otp.send_code("contact.email", "not an address", "email")
    assert bad_mail.value.field == "email"
    with pytest.raises(InvalidField) as bad_mobile:
        otp.send_code("contact.mobile", "02-2222-0507", "sms")
    assert bad_mobile.value.field == "mobile"
    assert notify.outbox() == []


def test_resend_is_throttled_per_target(app) -> None:
    """R-N3: a 4th code to the same address within 10 minutes is refused with the wait; another address is not."""
    for _ in range(3):
        otp.send_code("contact.email", EMAIL, "email")
    with pytest.raises(RateLimited) as refused:
        otp.send_code("contact.email", EMAIL.upper(), "email")
    assert 0 < refused.value.retry_after <= 600
    assert "10 分鐘" in str(refused.value.message)
    assert len(notify.outbox()) == 3
    otp.send_code("contact.email", "teacher@example.edu.tw", "email")


def test_codes_per_target_are_capped_per_day(app, use_settings) -> None:
    """R-N3: past the daily number of codes for one address, the next is refused until the day's window ends."""
    use_settings(otp_sends_per_target=100, otp_sends_per_target_per_day=2)
    otp.send_code("contact.email", EMAIL, "email")
    otp.send_code("contact.email", EMAIL, "email")
    with pytest.raises(RateLimited) as refused:
        otp.send_code("contact.email", EMAIL, "email")
    assert 3600 < refused.value.retry_after <= 86400


def test_code_never_in_a_log_line_an_audit_row_or_the_store(app, use_settings, caplog) -> None:
    """R-N3: the code appears in no log line (log sender included), no audit row, and the store keeps only its HMAC."""
    caplog.set_level(logging.DEBUG)
    use_settings(mail_sender="log")
    otp.send_code("contact.email", EMAIL, "email")
    use_settings(mail_sender="outbox")
    second = otp.send_code("password.reset", EMAIL, "email")
    code = last_code()
    stored = store().get(f"otp:{second.id}").decode()
    with pytest.raises(otp.WrongCode):
        otp.verify(second.id, wrong(code))
    otp.verify(second.id, code)

    lines = [r.getMessage() for r in caplog.records]
    assert any("mail to s***@example.edu.tw subject" in line for line in lines)
    assert any(line.startswith("otp.verified") for line in lines)
    assert not any(code in line or EMAIL in line for line in lines)
    rows = json.dumps([[r.event, r.actor, r.data] for r in audit_rows()], ensure_ascii=False)
    assert code not in rows and EMAIL not in rows and "s***@example.edu.tw" in rows
    assert not re.search(r'"(code|mac)"', rows)
    assert set(json.loads(stored)) == {"purpose", "target", "channel", "tries", "mac", "expires"}
    assert code not in stored


def test_development_outbox_holds_the_code(app, client) -> None:
    """R-C7: in development the code is read in the outbox (/dev/outbox), which is the point of it."""
    otp.send_code("contact.email", EMAIL, "email")
    commit()  # as the page that asked for it does
    code = last_code()
    assert code in client.get("/dev/outbox").get_data(as_text=True)


def test_one_time_code_never_shows_itself() -> None:
    """R-N3: a OneTimeCode prints as ****** (str, repr, f-string) and refuses to be pickled."""
    code = otp.OneTimeCode("123456")
    assert str(code) == f"{code}" == "******" and "123456" not in repr(code)
    with pytest.raises(TypeError):
        pickle.dumps(code)
    assert code == otp.OneTimeCode.parse("１２３ ４５６") and code != otp.OneTimeCode("123457")
    assert otp.OneTimeCode.parse("12345") is None and otp.OneTimeCode.parse("１２３４５a") is None


def test_failed_delivery_keeps_no_code(app, use_settings) -> None:
    """R-C7: when the relay fails the person gets DeliveryFailed (503) and no code was recorded as sent."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    use_settings(mail_sender="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, smtp_timeout=5.0)
    with pytest.raises(notify.DeliveryFailed):
        otp.send_code("contact.email", EMAIL, "email")
    assert audit_rows() == []


# -- through HTTP: what a browser sees -----------------------------------------------------------
@pytest.fixture
def web(app_config):
    """The app with a probe page that asks for a code (the real pages come with the flows that use codes)."""
    web = create_app({**app_config, "otp_sends_per_address": 4})
    bp = Blueprint("otp_probe", __name__)

    @bp.post("/probe/code")
    def send():
        challenge = otp.send_code("contact.email", request.form["email"], "email")
        commit()
        return jsonify(id=challenge.id, to=challenge.masked_target)

    web.register_blueprint(bp)
    web.config["WTF_CSRF_ENABLED"] = False
    yield web
    with web.app_context():
        db.session.execute(db.delete(AuditEvent).where(AuditEvent.event.startswith("otp.")))
        db.session.commit()
        db.engine.dispose()


def test_resend_refusal_carries_retry_after(app, web) -> None:
    """R-N3: the refused 4th code to one address is a 429 with Retry-After; 4 addresses later the IP is refused too."""
    browser = web.test_client()
    for _ in range(3):
        assert browser.post("/probe/code", data={"email": EMAIL}).status_code == 200
    refused = browser.post("/probe/code", data={"email": EMAIL})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 600
    assert browser.post("/probe/code", data={"email": "other@example.edu.tw"}).status_code == 200
    by_address = browser.post("/probe/code", data={"email": "third@example.edu.tw"})
    assert by_address.status_code == 429 and 600 < int(by_address.headers["Retry-After"]) <= 3600
