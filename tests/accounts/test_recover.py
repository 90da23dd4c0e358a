"""帳號管理 at /account/recover: 忘記帳號, 忘記密碼 (personal data or a code), 啟用帳號 (R-C1, R-C4, R-C5, R-C6,
R-C7, R-N3, R-N4), driven through their forms as a person would.

Persons come from the sources (factories.person); the captcha is solved with the answer the store holds
(``captcha.answer_for_tests``). Reset codes are sent by a worker thread off the request; here it runs
inline (``inline_sender``) unless a test is about the thread itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from concurrent.futures import Executor, Future
from typing import Any

import factories
import pytest
import sqlalchemy as sa
from helpers import csrf_from, login, sign_in

from idp import notify
from idp.accounts import services as accounts
from idp.accounts.models import Account
from idp.accounts.recover import services as recover
from idp.extensions import db, store
from idp.identity import services as identity
from idp.identity.models import Person
from idp.identity.nationalid import check_digit
from idp.oidc import services as oidc
from idp.oidc.models import Token
from idp.schools import loaders
from idp.schools import services as schools
from idp.security import captcha
from idp.security.models import AuditEvent
from idp.sources.base import AffiliationRecord

OLD_SCHOOL, NEW_SCHOOL = "014601", "014602"
PUPIL_ID = "E125837464"
NEW_PASSWORD = "green frog under the bridge"
BIRTHDAY = dt.date(2012, 5, 21)


def _id(first9: str) -> str:
    return first9 + check_digit(first9)


class Inline(Executor):
    """Runs a submitted job at once, in the caller's thread (the tests' one database connection)."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


@pytest.fixture
def inline_sender(app, monkeypatch) -> None:
    monkeypatch.setitem(app.extensions, recover.POOL, Inline())


@pytest.fixture
def directory(app) -> None:
    loaders.apply([
        (1, loaders.make_row(code=OLD_SCHOOL, name="新北市板橋區板橋國民小學", county_code="01", county="新北市",
                             district="板橋區", level="國小")),
        (2, loaders.make_row(code=NEW_SCHOOL, name="新北市板橋區新埔國民中學", county_code="01", county="新北市",
                             district="板橋區", level="國中")),
    ])
    db.session.commit()


@pytest.fixture
def pupil(directory) -> Person:
    """A pupil listed at two schools (moving up to junior high), whose current school is the old one,
    with a cloud account and a confirmed backup e-mail."""
    person = factories.person(
        PUPIL_ID,
        AffiliationRecord(OLD_SCHOOL, "學生", grade=6, class_no="601", class_name="六年一班", academic_year=113,
                          semester=2),
        AffiliationRecord(NEW_SCHOOL, "學生", grade=7, class_no="701", class_name="七年一班", academic_year=114,
                          semester=1),
        name="林小華", birth_date=BIRTHDAY)
    account = factories.AccountFactory(username="lin.hua01", cloud=True, name="林小華", email="hua@example.edu.tw",
                                       email_verified=True)
    identity.link_account(person, account, actor="test")
    person.current_school_code = OLD_SCHOOL
    db.session.commit()
    return person


def _account(username: str = "lin.hua01") -> Account:
    return accounts.get_account_by_username(username)


# -- a browser's moves ---------------------------------------------------------------------------
def _challenge(html: str) -> str:
    return re.search(r'name="captcha_code-id" value="([^"]+)"', html).group(1)


def _post(client, path: str, data: dict[str, Any], *, page: str | None = None, solve: bool = False):
    """GET the page, then POST its form with ``data`` (and the captcha solved when asked)."""
    html = client.get(page or path).get_data(as_text=True)
    data = {**data, "csrf_token": csrf_from(html)}
    if solve:
        challenge = _challenge(html)
        data.update({"captcha_code": captcha.answer_for_tests(challenge), "captcha_code-id": challenge})
    return client.post(path, data=data)


def _school_choice(code: str) -> dict[str, str]:
    school = schools.get_school(code)
    return {"county": school.county_code, "district": str(school.district_id), "level": school.level,
            "school": school.code}


def _identify(client, flow: str = "password", *, school: str = NEW_SCHOOL, name: str = "林小華",
              nid: str = PUPIL_ID, birthday: str = BIRTHDAY.isoformat()):
    base = f"/account/recover/{flow}"
    resp = _post(client, f"{base}/school", _school_choice(school))
    assert resp.headers["Location"] == f"{base}/school/confirm", resp.get_data(as_text=True)
    assert _post(client, f"{base}/school/confirm", {}).headers["Location"] == f"{base}/person"
    return _post(client, f"{base}/person", {"name": name, "national_id": nid, "birthday": birthday}, solve=True)


def _events(name: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)))


def _audit_text() -> str:
    rows = db.session.scalars(sa.select(AuditEvent)).all()
    return json.dumps([[r.event, r.actor, r.data] for r in rows], ensure_ascii=False)


def _offline_token(account: Account) -> None:
    client = factories.ClientFactory()
    oidc.save_token({"access_token": "at-" + account.username, "refresh_token": "rt-" + account.username,
                     "expires_in": 3600, "scope": "openid offline_access"}, client, account.id, "family-1")
    db.session.commit()


def _live_tokens(account: Account) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Token).where(
        Token.account_id == account.id, sa.or_(Token.access_revoked.is_(False), Token.refresh_revoked.is_(False))))


# -- 忘記帳號 ----------------------------------------------------------------------------------------
def test_forgot_account_shows_the_masked_name_and_nothing_more(client, pupil, caplog) -> None:
    """R-C1: ID + birthday + captcha show the account name masked (li*****01), no name, no school, no ID."""
    caplog.set_level(logging.DEBUG)
    resp = _post(client, "/account/recover/account", {"national_id": PUPIL_ID, "birthday": BIRTHDAY.isoformat()},
                 solve=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'data-answer="found"' in html
    assert "li*****01" in html and "lin.hua01" not in html
    assert "林小華" not in html and "板橋" not in html and PUPIL_ID not in html
    assert [e.data["found"] for e in _events("account.found")] == [True]
    assert PUPIL_ID not in caplog.text + _audit_text()


def test_forgot_account_without_an_account_offers_to_apply_the_same_way_for_everyone(client, directory) -> None:
    """R-C1: a known person without an account and an unknown ID get one answer: no account yet, apply."""
    factories.person(_id("F12345678"), AffiliationRecord(OLD_SCHOOL, "學生"), name="陳小安", birth_date=BIRTHDAY)
    db.session.commit()
    answers = []
    for nid in (_id("F12345678"), _id("G22222222")):
        resp = _post(client, "/account/recover/account", {"national_id": nid, "birthday": BIRTHDAY.isoformat()},
                     solve=True)
        assert resp.status_code == 404
        answers.append(resp.get_data(as_text=True))
    assert answers[0] == answers[1]
    assert 'data-answer="no_account"' in answers[0] and 'href="/account/apply"' in answers[0]


def test_forgot_account_with_a_wrong_captcha_looks_nothing_up(client, pupil) -> None:
    """R-N3: a wrong security code is refused beside its field (400) before any look-up."""
    html = client.get("/account/recover/account?lang=en").get_data(as_text=True)
    resp = client.post("/account/recover/account?lang=en", data={
        "national_id": PUPIL_ID, "birthday": BIRTHDAY.isoformat(), "captcha_code": "00000x",
        "captcha_code-id": _challenge(html), "csrf_token": csrf_from(html)})
    assert resp.status_code == 400 and "security code was not right" in resp.get_data(as_text=True)
    assert _events("account.found") == []


def test_forgot_account_bad_id_is_explained_beside_the_field(client, pupil) -> None:
    """R-N4: a malformed ID number gets its reason beside the field (400) and is not echoed back."""
    resp = _post(client, "/account/recover/account?lang=en", {"national_id": "A12345678X", "birthday": "2012-05-21"},
                 page="/account/recover/account?lang=en", solve=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="national_id-error"' in html and "A12345678X" not in html


def test_guessing_birthdays_for_one_id_is_stopped(client, app, pupil) -> None:
    """R-C1, R-N3: after recover_failures_per_id misses for one number, even the right birthday waits (429)."""
    for day in range(1, app.extensions["idp.settings"].recover_failures_per_id + 1):
        resp = _post(client, "/account/recover/account", {"national_id": PUPIL_ID, "birthday": f"2012-01-{day:02d}"},
                     solve=True)
        assert resp.status_code == 404
    resp = _post(client, "/account/recover/account", {"national_id": PUPIL_ID, "birthday": BIRTHDAY.isoformat()},
                 solve=True)
    assert resp.status_code == 429 and resp.headers["Retry-After"]


def test_forgot_account_of_a_disabled_account_points_to_activation(client, pupil) -> None:
    """R-C6: a disabled account is shown masked with the way to activate it."""
    accounts.disable(_account(), reason="inactivity", actor="inactivity-rule")
    db.session.commit()
    resp = _post(client, "/account/recover/account", {"national_id": PUPIL_ID, "birthday": BIRTHDAY.isoformat()},
                 solve=True)
    html = resp.get_data(as_text=True)
    assert 'data-advice="disabled"' in html and 'href="/account/recover/activate"' in html


# -- 忘記密碼: personal data --------------------------------------------------------------------------
def test_reset_with_personal_data_moves_the_account_to_the_chosen_school(client, app, pupil, caplog) -> None:
    """R-C4: school → confirm → name, ID, birthday, captcha → confirm account → new password twice → done; the
    person's current school becomes the chosen one and eduinfo names it first; the new password signs in."""
    caplog.set_level(logging.DEBUG)
    resp = _identify(client)
    assert resp.headers["Location"] == "/account/recover/password/new", resp.get_data(as_text=True)
    page = client.get("/account/recover/password/new").get_data(as_text=True)
    assert "lin.hua01" in page and "林小華" in page and "E1******64" in page and PUPIL_ID not in page
    resp = _post(client, "/account/recover/password/new", {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert resp.headers["Location"] == "/account/recover/password/done"
    done = client.get("/account/recover/password/done").get_data(as_text=True)
    assert 'data-answer="done"' in done and "lin.hua01" in done
    db.session.expire_all()
    assert db.session.get(Person, pupil.id).current_school_code == NEW_SCHOOL
    assert identity.eduinfo(db.session.get(Person, pupil.id))["schoolid"] == NEW_SCHOOL
    assert [e.data["how"] for e in _events("password.reset")] == ["personal_data"]
    assert _events("password.changed")[-1].data["reason"] == "reset"
    assert login(app.test_client(), "lin.hua01", NEW_PASSWORD).status_code == 302
    assert PUPIL_ID not in caplog.text + _audit_text() and NEW_PASSWORD not in caplog.text + _audit_text()


def test_a_reset_signs_the_account_out_everywhere_and_revokes_its_tokens(client, app, pupil) -> None:
    """R-C4, R-N3: after a reset every SSO session of the account ends (other accounts' stay) and its tokens,
    offline ones too, stop working."""
    account = _account()
    phone, laptop, sibling = app.test_client(), app.test_client(), app.test_client()
    sign_in(phone, account)
    sign_in(laptop, account)
    sign_in(sibling, factories.AccountFactory(username="sibling01"))
    _offline_token(account)
    assert phone.get("/account/").status_code == 200 and _live_tokens(account) == 1
    _identify(client)
    _post(client, "/account/recover/password/new", {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    for browser in (phone, laptop):
        assert browser.get("/account/").status_code == 302  # signed out: sent to the login page
    assert sibling.get("/account/").status_code == 200
    assert _live_tokens(account) == 0


def test_reset_without_personal_data_gets_the_advice(client, pupil) -> None:
    """R-C6: no match at the chosen school → the no-data answer (404): which database, ask the IT lead."""
    resp = _identify(client, name="林小花")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404 and 'data-answer="no_data"' in html and "資訊組長" in html
    assert _events("account.recover_refused")[-1].data["reason"] == "no_data"


def test_reset_for_a_person_without_an_account_offers_to_apply(client, directory) -> None:
    """R-C6: identified, but no account yet → the answer points to 申請帳號."""
    factories.person(_id("F12345678"), AffiliationRecord(NEW_SCHOOL, "學生"), name="陳小安", birth_date=BIRTHDAY)
    db.session.commit()
    resp = _identify(client, name="陳小安", nid=_id("F12345678"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404 and 'data-answer="no_account"' in html and 'href="/account/apply"' in html


def test_reset_of_a_disabled_account_points_to_activation_and_changes_nothing(client, pupil) -> None:
    """R-C6: a disabled account cannot be reset here: the answer (409) leads to 啟用帳號."""
    account = _account()
    accounts.disable(account, reason="operator", actor="operator1")
    db.session.commit()
    before = account.password_hash
    resp = _identify(client)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and 'data-answer="disabled"' in html and "/account/recover/activate" in html
    assert client.get("/account/recover/password/new").status_code == 302
    db.session.expire_all()
    assert _account().password_hash == before


def test_a_password_built_from_own_data_is_refused_and_the_flow_goes_on(client, app, pupil) -> None:
    """R-C4, R-N4: a new password holding the birthday is refused beside its field (400); nothing changes, and
    the same step accepts a good one."""
    _identify(client)
    weak = "hua20120521"
    resp = _post(client, "/account/recover/password/new?lang=en", {"password": weak, "password_again": weak},
                 page="/account/recover/password/new?lang=en")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="password-error"' in html and "birthday" in html
    assert _events("password.reset") == []
    resp = _post(client, "/account/recover/password/new", {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert resp.headers["Location"] == "/account/recover/password/done"


def test_two_different_passwords_are_refused(client, pupil) -> None:
    """R-N4: the two passwords differ → the message beside the second one, nothing stored."""
    _identify(client)
    resp = _post(client, "/account/recover/password/new?lang=en",
                 {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD + "x"},
                 page="/account/recover/password/new?lang=en")
    assert resp.status_code == 400 and "not the same" in resp.get_data(as_text=True)
    assert _events("password.reset") == []


def test_a_step_reached_early_goes_back_to_the_first_missing_one(client, pupil) -> None:
    """R-C4: a bookmark of a later step leads to the first step not done; no error page."""
    assert client.get("/account/recover/password/new").headers["Location"] == "/account/recover/password/school"
    assert client.get("/account/recover/activate/person").headers["Location"] == "/account/recover/activate/school"
    assert client.get("/account/recover/password/done").headers["Location"] == "/account/recover/password"


def test_back_shows_the_school_chosen_before(client, pupil) -> None:
    """R-C4: going back to the school step shows the school chosen, selected; no personal data in any URL."""
    resp = _post(client, "/account/recover/password/school", _school_choice(NEW_SCHOOL))
    assert PUPIL_ID not in resp.headers["Location"]
    html = client.get("/account/recover/password/school").get_data(as_text=True)
    assert re.search(rf'<option selected value="{NEW_SCHOOL}">|<option value="{NEW_SCHOOL}" selected', html)


# -- 啟用帳號 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("reason", ["inactivity", "operator"])
def test_a_disabled_pupil_activates_the_account_with_personal_data(client, app, pupil, reason) -> None:
    """R-C5: a pupil disabled by the inactivity rule or by an operator identifies and sets a new password: the
    account is active again (enabled how=activation) and the new password signs in."""
    accounts.disable(_account(), reason=reason, actor="inactivity-rule" if reason == "inactivity" else "operator1")
    db.session.commit()
    assert "students" in client.get("/account/recover/activate?lang=en").get_data(as_text=True).lower()
    resp = _identify(client, "activate")
    assert resp.headers["Location"] == "/account/recover/activate/new", resp.get_data(as_text=True)
    resp = _post(client, "/account/recover/activate/new", {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert resp.headers["Location"] == "/account/recover/activate/done"
    assert "lin.hua01" in client.get("/account/recover/activate/done").get_data(as_text=True)
    db.session.expire_all()
    account = _account()
    assert account.is_active and account.disabled_reason is None
    assert _events("account.enabled")[-1].data == {"account_id": account.id, "how": "activation", "was": reason}
    assert _events("account.activated")[-1].data["was"] == reason
    assert login(app.test_client(), "lin.hua01", NEW_PASSWORD).status_code == 302


def test_activation_is_for_students_only(client, directory) -> None:
    """R-C5: a teacher's personal data do not activate anything (the role is 學生): the no-data answer."""
    person = factories.person(_id("B22013986"), AffiliationRecord(NEW_SCHOOL, "教師"), name="陳美玲",
                              birth_date=dt.date(1985, 3, 9), source="webhr")
    account = factories.AccountFactory(username="teacher01", cloud=True)
    identity.link_account(person, account, actor="test")
    accounts.disable(account, reason="operator", actor="operator1")
    db.session.commit()
    resp = _identify(client, "activate", name="陳美玲", nid=_id("B22013986"), birthday="1985-03-09")
    assert resp.status_code == 404 and 'data-answer="no_data"' in resp.get_data(as_text=True)
    db.session.expire_all()
    assert not accounts.get_account_by_username("teacher01").is_active


def test_activating_an_active_account_says_it_is_active(client, pupil) -> None:
    """R-C6: an active account needs no activation: the answer (409) points to sign-in and 忘記密碼."""
    resp = _identify(client, "activate")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and 'data-answer="active"' in html and "/account/recover/password" in html


# -- 忘記密碼: a code to the verified backup e-mail --------------------------------------------------
def _ask_code(client, username: str, channel: str = "email"):
    return _post(client, "/account/recover/password/code", {"username": username, "channel": channel}, solve=True)


def _code_for(to: str) -> str:
    message = next(m for m in notify.outbox() if m.to == to)
    return re.search(r"\b(\d{6})\b", message.text).group(1)


def test_reset_with_a_code_sent_to_the_verified_email(client, app, pupil, inline_sender) -> None:
    """R-C4, R-C7: account name → a code to the confirmed backup e-mail → the code → new password → done;
    sessions of the account end, the new password signs in."""
    browser = app.test_client()
    sign_in(browser, _account())
    resp = _ask_code(client, "Lin.Hua01")
    assert resp.headers["Location"] == "/account/recover/password/code/enter"
    resp = _post(client, "/account/recover/password/code/enter", {"code": _code_for("hua@example.edu.tw")})
    assert resp.headers["Location"] == "/account/recover/password/code/new"
    assert "lin.hua01" in client.get("/account/recover/password/code/new").get_data(as_text=True)
    resp = _post(client, "/account/recover/password/code/new", {"password": NEW_PASSWORD,
                                                                "password_again": NEW_PASSWORD})
    assert resp.headers["Location"] == "/account/recover/password/code/done"
    assert 'data-answer="done"' in client.get("/account/recover/password/code/done").get_data(as_text=True)
    assert [e.data["how"] for e in _events("password.reset")] == ["code"]
    assert _events("password.reset_requested")[-1].data["outcome"] == "sent"
    assert browser.get("/account/").status_code == 302
    assert login(app.test_client(), "lin.hua01", NEW_PASSWORD).status_code == 302


def _normalised(html: str) -> str:
    """A page without its one-time tokens (CSRF, captcha challenge)."""
    html = re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "CSRF", html)
    return re.sub(r"/captcha/[A-Za-z0-9_-]{24}|value=\"[A-Za-z0-9_-]{24}\"", "CAPTCHA", html)


def test_the_code_page_answers_alike_whether_or_not_the_account_exists(app, pupil, inline_sender) -> None:
    """R-C4, R-N3: an account with a confirmed e-mail, one with an unconfirmed e-mail, one with none and a
    name nobody has get byte-identical answers (apart from tokens); only the first gets a message."""
    factories.AccountFactory(username="unconfirmed", email="u@example.edu.tw", email_verified=False)
    factories.AccountFactory(username="nomail01", email=None, email_verified=False)
    db.session.commit()
    answers = []
    for name in ("lin.hua01", "unconfirmed", "nomail01", "nobody.here"):
        browser = app.test_client()
        resp = _ask_code(browser, name)
        page = browser.get(resp.headers["Location"])
        wrong = _post(browser, "/account/recover/password/code/enter", {"code": "000000"})
        answers.append((resp.status_code, resp.headers["Location"], resp.get_data(), page.status_code,
                        _normalised(page.get_data(as_text=True)), wrong.status_code,
                        _normalised(wrong.get_data(as_text=True))))
    assert answers[0] == answers[1] == answers[2] == answers[3]
    assert [m.to for m in notify.outbox()] == ["hua@example.edu.tw"]
    assert [e.data["outcome"] for e in _events("password.reset_requested")] == [
        "sent", "no_address", "no_address", "no_account"]


def test_wrong_codes_run_out_alike_for_an_account_that_got_none(app, pupil, inline_sender) -> None:
    """R-N3: five wrong codes end the code (429, ask for a new one) just as they do for a real code."""
    outcomes = []
    for name in ("lin.hua01", "nobody.here"):
        browser = app.test_client()
        _ask_code(browser, name)
        statuses = [_post(browser, "/account/recover/password/code/enter?lang=en", {"code": "000000"},
                          page="/account/recover/password/code/enter?lang=en").status_code for _ in range(5)]
        last = browser.get("/account/recover/password/code/enter")  # the code is gone: ask again
        outcomes.append((statuses, last.status_code))
    assert outcomes[0] == outcomes[1] == ([400, 400, 400, 400, 429], 302)


def test_a_code_typed_wrong_says_how_many_tries_are_left(client, pupil, inline_sender) -> None:
    """R-N4: a wrong code is refused beside the field with the tries left; letters cost no try."""
    _ask_code(client, "lin.hua01")
    html = _post(client, "/account/recover/password/code/enter?lang=en", {"code": "12345x"},
                 page="/account/recover/password/code/enter?lang=en").get_data(as_text=True)
    assert 'id="code-error"' in html and "6 digits" in html
    html = _post(client, "/account/recover/password/code/enter?lang=en", {"code": "000000"},
                 page="/account/recover/password/code/enter?lang=en").get_data(as_text=True)
    assert "Tries left: 4" in html


def test_a_slow_mail_relay_does_not_slow_the_answer(app, pupil, monkeypatch) -> None:
    """R-N3: the code request is answered before the mail is handed over (a relay taking 2 s), so the time of
    the answer does not tell whether a message went out; the worker sends it afterwards."""
    from idp.notify import senders

    sent: list[str] = []
    real = senders.sender

    class SlowRelay:
        def send(self, message) -> None:
            time.sleep(2)
            sent.append(message.to)

    monkeypatch.setattr(senders, "sender", lambda kind: SlowRelay() if kind == "mail" else real(kind))
    browser = app.test_client()
    html = browser.get("/account/recover/password/code").get_data(as_text=True)
    challenge = _challenge(html)
    data = {"username": "lin.hua01", "channel": "email", "csrf_token": csrf_from(html),
            "captcha_code": captcha.answer_for_tests(challenge), "captcha_code-id": challenge}
    started = time.monotonic()
    resp = browser.post("/account/recover/password/code", data=data)
    took = time.monotonic() - started
    pool = app.extensions.pop(recover.POOL)
    pool.shutdown(wait=True)
    assert resp.status_code == 302 and took < 1.5, took
    assert sent == ["hua@example.edu.tw"]


def _expire_codes() -> None:
    """What ten minutes do to the codes: their store entries are gone."""
    s = store()
    prefixes = tuple(s.prefix + p for p in ("recover:code:", "otp:"))
    if hasattr(s, "client"):  # Redis
        for key in [k for p in prefixes for k in s.client.scan_iter(match=p + "*")]:
            s.client.delete(key)
    else:
        for key in [k for k in s._data if k.startswith(prefixes)]:
            s._data.pop(key)


def test_an_old_code_page_says_the_code_expired(client, pupil, inline_sender) -> None:
    """R-N4: once the code's time is over, the code step says so beside the field and offers a new code."""
    _ask_code(client, "lin.hua01")
    _expire_codes()
    html = _post(client, "/account/recover/password/code/enter?lang=en", {"code": "123456"},
                 page="/account/recover/password/code/enter?lang=en").get_data(as_text=True)
    assert "expired" in html and 'href="/account/recover/password/code"' in html
