"""我找不到我的學校 reports and the console's queue (R-C3), the FAQ and contact pages (R-H1)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import sqlalchemy as sa
from factories import AccountFactory
from helpers import csrf_from, sign_in

from idp.extensions import db
from idp.security import captcha
from idp.security.models import AuditEvent
from idp.support import services
from idp.support.models import SupportReport

REPORT = {"county": "花蓮縣", "school_name": "花蓮縣立新城國民中學", "email": "parent@example.com",
          "message": "我的孩子是七年級學生，清單裡沒有這所學校。"}


def _report(client, data: dict | None = None, *, answer: str | None = None, path: str = "/help/school-missing"):
    html = client.get(path).get_data(as_text=True)
    challenge = re.search(r'name="captcha_code-id" value="([^"]+)"', html).group(1)
    return client.post(path, data={**REPORT, **(data or {}), "captcha_code-id": challenge,
                                   "captcha_code": captcha.answer_for_tests(challenge) if answer is None else answer,
                                   "csrf_token": csrf_from(html)})


def _token(html: str, prefix: str) -> dict[str, str]:
    """The CSRF token of the console form with this prefix (answer-, close-)."""
    value = re.search(rf'name="{prefix}-csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    return {f"{prefix}-csrf_token": value}


def _count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(SupportReport))


def _events(name: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == name)))


@pytest.fixture
def console(client, app):
    sign_in(client, AccountFactory(username="operator1", operator=True))
    return client


# -- the report ------------------------------------------------------------------------------------
def test_a_school_missing_report_is_stored_and_thanked(client) -> None:
    """R-C3: county, school name, e-mail, message and captcha make a new report; the thank-you page gives its
    number; the audit row names the report, not the reporter's address or message."""
    resp = _report(client)
    assert resp.headers["Location"] == "/help/school-missing/thanks"
    report = db.session.scalar(sa.select(SupportReport))
    assert (report.status, report.county, report.school_name, report.email) == (
        "new", "花蓮縣", "花蓮縣立新城國民中學", "parent@example.com")
    assert report.locale == "zh_Hant_TW"
    thanks = client.get("/help/school-missing/thanks").get_data(as_text=True)
    assert f'data-report="{report.id}"' in thanks
    (event,) = _events("support.reported")
    said = json.dumps([event.actor, event.data], ensure_ascii=False)
    assert event.data["report_id"] == report.id and "parent@example.com" not in said and "七年級" not in said


@pytest.mark.parametrize(("change", "field"), [({"school_name": ""}, "school_name"), ({"email": "parent@"}, "email"),
                                               ({"county": ""}, "county"), ({"county": "火星市"}, "county"),
                                               ({"message": "字" * 2001}, "message")])
def test_bad_input_is_named_beside_its_field_and_nothing_is_stored(client, change, field) -> None:
    """R-C3, R-N4: a missing school name, a broken address, no county or an overlong message gets a message
    beside that field (400) and stores nothing; the rest of what was typed stays in the form."""
    resp = _report(client, change)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and f'id="{field}-error"' in html and _count() == 0
    if field != "school_name":
        assert 'value="花蓮縣立新城國民中學"' in html


def test_a_wrong_captcha_stores_nothing(client) -> None:
    """R-C3, R-N3: the report needs the captcha solved."""
    resp = _report(client, answer="00000x")
    assert resp.status_code == 400 and 'id="captcha_code-error"' in resp.get_data(as_text=True) and _count() == 0


def test_reports_from_one_address_are_limited(app, client, monkeypatch) -> None:
    """R-N3: past support_reports_per_address in an hour, the address is refused (429) and nothing is stored."""
    settings = dataclasses.replace(app.extensions["idp.settings"], support_reports_per_address=2)
    monkeypatch.setitem(app.extensions, "idp.settings", settings)
    assert _report(client).status_code == 302 and _report(client).status_code == 302
    assert _report(client).status_code == 429 and _count() == 2


def test_every_school_picker_offers_the_report(client) -> None:
    """R-C3: the apply wizard's school picker links to 我找不到我的學校."""
    html = client.get("/account/apply").get_data(as_text=True)
    csrf = csrf_from(html)
    client.post("/account/apply", data={"role": "學生", "csrf_token": csrf})
    assert 'href="/help/school-missing"' in client.get("/account/apply/school").get_data(as_text=True)


# -- the console's queue ----------------------------------------------------------------------------
def test_the_queue_shows_new_reports_and_an_answer_reaches_the_reporter(client, console) -> None:
    """R-C3: the report reaches the console's queue (status new); the operator answers it by mail (answered,
    the mail is in the reporter's inbox) and closes it (closed); each step is audited."""
    from idp import notify

    _report(client)
    report = db.session.scalar(sa.select(SupportReport))
    queue = console.get("/admin/support").get_data(as_text=True)
    assert f'data-report="{report.id}"' in queue and "花蓮縣立新城國民中學" in queue
    page = console.get(f"/admin/support/{report.id}").get_data(as_text=True)
    assert "parent@example.com" in page and "七年級" in page
    resp = console.post(f"/admin/support/{report.id}", data={
        "answer-note": "已將學校加入名單，請重新申請。", "answer-mail": "y", "answer-submit": "1",
        **_token(page, "answer")})
    assert resp.headers["Location"] == f"/admin/support/{report.id}"
    db.session.refresh(report)
    assert (report.status, report.answered_by, report.answer_mailed) == ("answered", "operator1", True)
    (mail,) = [m for m in notify.outbox() if m.to == "parent@example.com"]
    assert "已將學校加入名單" in mail.text and str(report.id) in mail.subject
    assert f'data-report="{report.id}"' in console.get("/admin/support?status=answered").get_data(as_text=True)
    assert f'data-report="{report.id}"' not in console.get("/admin/support").get_data(as_text=True)
    page = console.get(f"/admin/support/{report.id}").get_data(as_text=True)
    resp = console.post(f"/admin/support/{report.id}", data={"close-submit": "1", **_token(page, "close")})
    assert resp.headers["Location"] == "/admin/support"
    db.session.refresh(report)
    assert report.status == "closed" and report.closed_by == "operator1"
    assert [len(_events(e)) for e in ("support.answered", "support.closed")] == [1, 1]


def test_an_answer_without_mail_is_only_recorded(client, console) -> None:
    """R-C3: an answer kept as a note sends nothing; an empty answer is refused beside the field."""
    from idp import notify

    _report(client)
    report_id = db.session.scalar(sa.select(SupportReport.id))
    page = console.get(f"/admin/support/{report_id}").get_data(as_text=True)
    empty = console.post(f"/admin/support/{report_id}", data={"answer-note": " ", "answer-submit": "1",
                                                             **_token(page, "answer")})
    assert empty.status_code == 400 and 'id="answer-note-error"' in empty.get_data(as_text=True)
    console.post(f"/admin/support/{report_id}", data={"answer-note": "電話聯絡過了", "answer-submit": "1",
                                                      **_token(page, "answer")})
    assert db.session.get(SupportReport, report_id).status == "answered"
    assert not [m for m in notify.outbox() if m.to == "parent@example.com"]


def test_a_closed_report_takes_no_more_answers(app, client) -> None:
    """R-C3: answering a closed report is refused (409); closing twice records one event."""
    from idp.errors import InvalidField

    with app.test_request_context():
        report = services.report_school_missing(county="臺東縣", school_name="某校", email="a@example.com")
        db.session.commit()
    services.close(report.id, actor="op")
    services.close(report.id, actor="op")
    with pytest.raises(InvalidField) as refused:
        services.answer(report.id, "遲來的回覆", actor="op")
    assert refused.value.status == 409 and len(_events("support.closed")) == 1


def test_only_operators_see_the_queue(client, app) -> None:
    """R-C3, R-N3: nobody signed in is sent to sign in; a person without the operator role gets 403."""
    assert "/login" in client.get("/admin/support").headers["Location"]
    sign_in(client, AccountFactory(username="pupil01", cloud=True))
    assert client.get("/admin/support").status_code == 403


# -- help pages (R-H1) -----------------------------------------------------------------------------------
def test_the_faq_answers_the_seeds_questions(client) -> None:
    """R-H1: 常見問題 covers no data, already has an account, disabled, high-school pupils, the school-missing report
    and the difference to general members, with links to the flows and the contact details."""
    html = client.get("/help?lang=en").get_data(as_text=True)
    for anchor in ("kinds", "have-account", "apply", "forgot-password", "no-data", "exists", "disabled",
                   "school-missing", "county-account", "contact"):
        assert f'id="{anchor}"' in html and f'href="#{anchor}"' in html
    for link in ("/account/apply", "/account/recover/account", "/account/recover/password",
                 "/account/recover/activate", "/help/school-missing"):
        assert f'href="{link}"' in html
    assert "資訊組長" in html and "國教署全國高級中等學校學生基本資料庫" in html and "04-22220507" in html


def test_contact_shows_the_seeds_customer_service_by_default(client) -> None:
    """R-H1: 聯絡我們 shows the seed's phone, e-mail and office hours (the defaults of the settings)."""
    html = client.get("/help/contact").get_data(as_text=True)
    assert 'href="tel:0422220507"' in html and "04-22220507" in html
    assert 'href="mailto:oidcservice@mail.edu.tw"' in html
    assert "週一至週五 08:30–12:30、13:30–17:00（例假日除外）" in html


def test_contact_details_are_configurable(app, client, monkeypatch) -> None:
    """R-H1: another deployment sets its own customer service in the settings."""
    settings = dataclasses.replace(app.extensions["idp.settings"], support_phone="02-7712-9000",
                                   support_email="help@example.edu.tw", support_hours="24 小時")
    monkeypatch.setitem(app.extensions, "idp.settings", settings)
    html = client.get("/help/contact").get_data(as_text=True)
    assert "02-7712-9000" in html and "help@example.edu.tw" in html and "24 小時" in html
    assert "04-22220507" not in html


def test_an_answer_whose_mail_fails_is_not_recorded(app, client, console, monkeypatch) -> None:
    """R-N4, R-C3: when the mail server refuses, the answer is not saved (status stays new, no audit row) and
    the operator sees why beside the mail choice."""
    import socket

    _report(client)
    report_id = db.session.scalar(sa.select(SupportReport.id))
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = dataclasses.replace(app.extensions["idp.settings"], mail_sender="smtp", smtp_host="127.0.0.1",
                                   smtp_port=port, smtp_starttls=False, smtp_timeout=2.0)
    monkeypatch.setitem(app.extensions, "idp.settings", settings)
    page = console.get(f"/admin/support/{report_id}").get_data(as_text=True)
    resp = console.post(f"/admin/support/{report_id}", data={"answer-note": "已加入", "answer-mail": "y",
                                                             "answer-submit": "1", **_token(page, "answer")})
    assert resp.status_code == 400 and 'id="answer-mail-error"' in resp.get_data(as_text=True)
    assert db.session.get(SupportReport, report_id).status == "new" and not _events("support.answered")
