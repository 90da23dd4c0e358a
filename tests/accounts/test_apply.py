"""申請帳號, the apply wizard at /account/apply (R-C2, R-C6, R-N4), driven through its forms as a person would.

Persons come from the sources (factories.person); the captcha is solved with the answer the store
holds (``captcha.answer_for_tests``), as the browser tests do.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any

import factories
import pytest
import sqlalchemy as sa
from helpers import csrf_from, login

from idp.accounts import services as accounts
from idp.accounts.apply import services as apply_services
from idp.accounts.models import Account
from idp.extensions import db
from idp.identity import services as identity
from idp.identity.models import Person
from idp.identity.nationalid import NationalId, check_digit
from idp.schools import loaders
from idp.schools import services as schools
from idp.security import captcha
from idp.security.models import AuditEvent
from idp.sources.base import AffiliationRecord

SCHOOL = "014601"
HIGH = "014301"
EXPERIMENTAL = "014701"
PUPIL_ID = "E125837464"
TEACHER_ID = "B220139864"
PROXY_ID = "F131104093"
PASSWORD = "blue kite over the river"


def _id(first9: str) -> str:
    return first9 + check_digit(first9)


@pytest.fixture
def directory(app) -> None:
    loaders.apply([
        (1, loaders.make_row(code=SCHOOL, name="新北市板橋區板橋國民小學", county_code="01", county="新北市",
                             district="板橋區", level="國小")),
        (2, loaders.make_row(code=HIGH, name="新北市立板橋高級中學", county_code="01", county="新北市",
                             district="板橋區", level="高中")),
        (3, loaders.make_row(code=EXPERIMENTAL, name="新北市新店區信賢種籽親子實驗小學", county_code="01",
                             county="新北市", district="新店區", level="實驗教育")),
    ])
    db.session.commit()


@pytest.fixture
def pupil(directory) -> Person:
    person = factories.person(PUPIL_ID, AffiliationRecord(SCHOOL, "學生", grade=3, class_no="305",
                                                          class_name="三年五班", academic_year=114, semester=1),
                              name="林小華", birth_date=dt.date(2016, 5, 21))
    db.session.commit()
    return person


@pytest.fixture
def teacher(directory) -> Person:
    person = factories.person(TEACHER_ID, AffiliationRecord(SCHOOL, "教師", title="導師"), name="張志明",
                              birth_date=dt.date(1985, 3, 9), source="webhr")
    db.session.commit()
    return person


@pytest.fixture
def proxy_pupil(directory) -> Person:
    """A pupil of an experimental school known only from the proxy platform: month and day of birth."""
    person = factories.person(PROXY_ID, AffiliationRecord(EXPERIMENTAL, "學生", grade=2), name="黃佳穎",
                              birth_date=None, birth_month_day="0309", source="proxy")
    db.session.commit()
    return person


# -- walking the wizard --------------------------------------------------------------------------
def _post(client, path: str, data: dict[str, Any], page: str | None = None):
    html = client.get(page or path).get_data(as_text=True)
    return client.post(path, data={**data, "csrf_token": csrf_from(html)})


def _school_choice(code: str) -> dict[str, str]:
    school = schools.get_school(code)
    return {"county": school.county_code, "district": str(school.district_id), "level": school.level,
            "school": school.code}


def to_person_step(client, role: str = "學生", school: str = SCHOOL) -> None:
    """Steps 1–3: role, school, confirm the school."""
    assert _post(client, "/account/apply", {"role": role}).headers["Location"] == "/account/apply/school"
    resp = _post(client, "/account/apply/school", _school_choice(school))
    assert resp.headers["Location"] == "/account/apply/school/confirm", resp.get_data(as_text=True)
    assert _post(client, "/account/apply/school/confirm", {}).headers["Location"] == "/account/apply/person"


def post_person(client, *, name: str, nid: str, birthday: str):
    """Step 4: personal data with the captcha solved."""
    html = client.get("/account/apply/person").get_data(as_text=True)
    challenge = re.search(r'name="captcha_code-id" value="([^"]+)"', html).group(1)
    return client.post("/account/apply/person", data={
        "name": name, "national_id": nid, "birthday": birthday, "captcha_code": captcha.answer_for_tests(challenge),
        "captcha_code-id": challenge, "csrf_token": csrf_from(html)})


def to_details_step(client, *, name: str = "林小華", nid: str = PUPIL_ID, birthday: str = "2016-05-21",
                    role: str = "學生", school: str = SCHOOL) -> None:
    to_person_step(client, role, school)
    resp = post_person(client, name=name, nid=nid, birthday=birthday)
    assert resp.headers.get("Location") == "/account/apply/check", resp.get_data(as_text=True)
    assert _post(client, "/account/apply/check", {}).headers["Location"] == "/account/apply/details"


def post_details(client, username: str = "lin.hsiao-hua", password: str = PASSWORD, again: str | None = None,
                 email: str = "hua@example.edu.tw", mobile: str = "0912-345-678"):
    return _post(client, "/account/apply/details", {"username": username, "password": password,
                                                     "password_again": password if again is None else again,
                                                     "email": email, "mobile": mobile})


def apply_fully(client, **kwargs: Any):
    details = {k: kwargs.pop(k) for k in ("username", "password", "email", "mobile") if k in kwargs}
    to_details_step(client, **kwargs)
    resp = post_details(client, **details)
    assert resp.headers.get("Location") == "/account/apply/confirm", resp.get_data(as_text=True)
    return _post(client, "/account/apply/confirm", {})


def _events(name: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == name)))


def _everything(caplog) -> str:
    rows = db.session.scalars(sa.select(AuditEvent)).all()
    return caplog.text + json.dumps([[r.event, r.actor, r.data] for r in rows], ensure_ascii=False)


# -- the whole walk --------------------------------------------------------------------------------
def test_a_pupil_applies_and_signs_in(app, client, pupil, caplog) -> None:
    """R-C2: role → school → confirm → personal data → confirm → account, password, e-mail, mobile → confirm:
    a linked cloud account at the chosen school; the pupil signs in with it."""
    caplog.set_level(logging.INFO)
    pages = []
    to_person_step(client)
    pages.append(client.get("/account/apply/person").get_data(as_text=True))
    assert post_person(client, name="林小華", nid=PUPIL_ID, birthday="2016-05-21").headers["Location"] \
        == "/account/apply/check"
    check = client.get("/account/apply/check?lang=en").get_data(as_text=True)
    assert "林小華" in check and "E1******64" in check and "新北市板橋區板橋國民小學" in check
    assert _post(client, "/account/apply/check", {}).headers["Location"] == "/account/apply/details"
    assert post_details(client).headers["Location"] == "/account/apply/confirm"
    confirm = client.get("/account/apply/confirm?lang=en").get_data(as_text=True)
    assert "lin.hsiao-hua" in confirm and "hua@example.edu.tw" in confirm and "0912345678" in confirm
    assert PASSWORD not in confirm
    resp = _post(client, "/account/apply/confirm", {})
    assert resp.headers["Location"] == "/account/apply/done"
    done = client.get("/account/apply/done?lang=en").get_data(as_text=True)
    assert "Your account is ready" in done and "lin.hsiao-hua" in done
    assert 'href="/login?next=/&amp;login_hint=lin.hsiao-hua"' in done  # the new name is filled in
    pages += [check, confirm, done]

    account = accounts.get_account_by_username("lin.hsiao-hua")
    assert (account.kind, account.name, account.email, account.phone) == ("cloud", "林小華", "hua@example.edu.tw",
                                                                         "0912345678")
    assert not account.email_verified and not account.phone_verified  # the profile pages verify them (R-C7)
    person = identity.person_for_account(account.id)
    assert person.id == pupil.id and person.current_school_code == SCHOOL
    applied = _events("account.applied")
    assert len(applied) == 1 and applied[0].data["school_code"] == SCHOOL and applied[0].data["role"] == "學生"
    assert len(_events("account.apply_identified")) == 1
    said = _everything(caplog) + "".join(pages)
    assert PUPIL_ID not in said and PUPIL_ID[1:] not in said and PASSWORD not in said
    assert login(client, "lin.hsiao-hua", PASSWORD).status_code == 302


def test_a_proxy_platform_pupil_applies_with_the_birthday_typed_in_full(client, proxy_pupil) -> None:
    """R-C2, R-S3: a private/experimental school's pupil known only by month and day (proxy platform) applies."""
    resp = apply_fully(client, name="黃佳穎", nid=PROXY_ID, birthday="2017-03-09", school=EXPERIMENTAL,
                       username="huang.chia-ying")
    assert resp.headers["Location"] == "/account/apply/done"
    account = accounts.get_account_by_username("huang.chia-ying")
    assert identity.person_for_account(account.id).id == proxy_pupil.id


def test_a_teacher_applies_with_their_role(client, teacher) -> None:
    """R-C2: a teacher applies likewise with the role 教師; the pupil's role would not find them."""
    to_person_step(client, role="學生")
    assert post_person(client, name="張志明", nid=TEACHER_ID, birthday="1985-03-09").status_code == 404
    resp = apply_fully(client, role="教師", name="張志明", nid=TEACHER_ID, birthday="1985-03-09",
                       username="chang.chih-ming")
    assert resp.headers["Location"] == "/account/apply/done"
    account = accounts.get_account_by_username("chang.chih-ming")
    assert identity.person_for_account(account.id).id == teacher.id
    assert _events("account.applied")[0].data["role"] == "教師"


# -- the seed's answers (R-C6) -------------------------------------------------------------------------
@pytest.mark.parametrize("typed", [{"name": "林小花"}, {"birthday": "2016-05-22"}, {"nid": _id("K12583746")}])
def test_no_personal_data_says_whom_to_ask_and_stores_nothing(client, pupil, typed) -> None:
    """R-C6: a name, birthday or number that does not match gets one answer: ask the school's IT lead whether
    the data is in the county's student-affairs system; no account, no state for a later step."""
    to_person_step(client)
    data = {"name": "林小華", "nid": PUPIL_ID, "birthday": "2016-05-21", **typed}
    resp = post_person(client, **data)
    assert resp.status_code == 404
    html = resp.get_data(as_text=True)
    assert 'data-answer="no_data"' in html and "資訊組長" in html and "學務系統" in html
    assert "04-22220507" in html  # the seed's customer service, from settings
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 0
    assert client.get("/account/apply/check").headers["Location"] == "/account/apply/person"
    refused = _events("account.apply_refused")
    assert [e.data["reason"] for e in refused] == ["no_data"] and "person_id" not in refused[0].data


def test_an_existing_account_points_to_forgot_password(client, pupil) -> None:
    """R-C6: a person who already has an account is told so (its name masked) and sent to 忘記密碼."""
    account = accounts.create_account("lin.hua01", PASSWORD, name="林小華", kind="cloud")
    identity.link_account(pupil, account, actor="test")
    db.session.commit()
    to_person_step(client)
    resp = post_person(client, name="林小華", nid=PUPIL_ID, birthday="2016-05-21")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and 'data-answer="exists"' in html
    assert "li*****01" in html and "lin.hua01" not in html
    assert 'href="/account/recover/password"' in html
    assert _events("account.apply_refused")[0].data["reason"] == "exists"


def test_a_disabled_account_points_students_to_activation(client, pupil) -> None:
    """R-C6, R-C5: a pupil whose account is disabled is sent to 啟用帳號, not given a second account."""
    account = accounts.create_account("lin.hua01", PASSWORD, name="林小華", kind="cloud")
    identity.link_account(pupil, account, actor="test")
    accounts.disable(account, reason="inactivity", actor="inactivity-rule")
    db.session.commit()
    to_person_step(client)
    resp = post_person(client, name="林小華", nid=PUPIL_ID, birthday="2016-05-21")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and 'data-answer="disabled"' in html
    assert 'href="/account/recover/activate"' in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 1


def test_a_disabled_teacher_is_sent_to_the_school_or_customer_service(client, teacher) -> None:
    """R-C6, R-C5: activation is for students; a teacher with a disabled account is told whom to ask."""
    account = accounts.create_account("chang.cm", PASSWORD, name="張志明", kind="cloud")
    identity.link_account(teacher, account, actor="test")
    accounts.disable(account, reason="operator", actor="operator1")
    db.session.commit()
    to_person_step(client, role="教師")
    html = post_person(client, name="張志明", nid=TEACHER_ID, birthday="1985-03-09").get_data(as_text=True)
    assert 'data-answer="disabled"' in html and "/account/recover/activate" not in html
    assert 'href="/help/contact"' in html


def test_senior_high_pupils_are_advised_to_try_forgot_account_first(client, directory) -> None:
    """R-C6: a pupil who picks a senior-high school is told to check 忘記帳號 first; a primary pupil is not."""
    to_person_step(client, school=HIGH)
    html = client.get("/account/apply/school/confirm").get_data(as_text=True)
    assert 'data-advice="high-school"' in html and 'href="/account/recover/account"' in html
    _post(client, "/account/apply/school", _school_choice(SCHOOL))
    assert 'data-advice="high-school"' not in client.get("/account/apply/school/confirm").get_data(as_text=True)


# -- rules at the account step (R-C2, R-N4) ------------------------------------------------------------
@pytest.mark.parametrize(("password", "words"), [
    ("xE125837464x", "ID number"), ("my25837464pw", "ID number"), ("born20160521", "birthday"),
    ("password123", "common"), ("short1", "at least 8"),
])
def test_passwords_built_from_own_data_are_refused_beside_the_field(client, pupil, password, words) -> None:
    """R-C2: a password with the person's ID, birthday, a common one or a short one is refused beside the
    password field; nothing is created and the password is not echoed."""
    to_details_step(client)
    client.get("/account/apply/details?lang=en")
    resp = post_details(client, password=password)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="password-error"' in html and password not in html
    assert words in html[html.index('id="password-error"'):][:300]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 0


def test_the_month_day_pupils_typed_birthday_counts_for_the_password_rules(client, proxy_pupil) -> None:
    """R-C2: for a proxy-platform pupil the typed year completes the birthday the password must not contain."""
    to_details_step(client, name="黃佳穎", nid=PROXY_ID, birthday="2017-03-09", school=EXPERIMENTAL)
    resp = post_details(client, username="huang.cy", password="star20170309")
    assert resp.status_code == 400 and 'id="password-error"' in resp.get_data(as_text=True)


@pytest.mark.parametrize(("username", "field_error"), [("AB", True), ("has space", True), ("taken.name", True)])
def test_account_names_follow_the_rule_and_are_never_reissued(client, pupil, username, field_error) -> None:
    """R-C2: a name against the rule, or one anybody ever had, is refused beside the account-name field."""
    accounts.create_account("taken.name", PASSWORD, name="別人")
    db.session.commit()
    to_details_step(client)
    resp = post_details(client, username=username)
    assert resp.status_code in (400, 409) and ('id="username-error"' in resp.get_data(as_text=True)) == field_error


def test_mismatched_passwords_and_bad_contacts_are_refused_beside_their_fields(client, pupil) -> None:
    """R-N4: different passwords, an address without a domain and a number that is no mobile each get a
    message beside their field; what was typed (but passwords) is kept."""
    to_details_step(client)
    resp = post_details(client, again="another sentence here", email="hua@", mobile="02-1234-5678")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    for field in ("password_again", "email", "mobile"):
        assert f'id="{field}-error"' in html
    assert 'value="lin.hsiao-hua"' in html and PASSWORD not in html


def test_the_password_waits_for_the_confirmation_sealed(app, client, pupil) -> None:
    """R-C2, R-N3: between the account step and the confirmation the password is in neither the store nor the
    cookie in clear, and the ID is nowhere in the wizard's state."""
    to_details_step(client)
    post_details(client)
    with client.session_transaction() as sess:
        cookie = json.dumps(dict(sess), default=str)
        wid = sess["wizard.apply"]
    state = json.dumps(app.extensions["idp.store"].get_json(f"wizard:apply:{wid}"), ensure_ascii=False)
    assert "sealed" in state and PASSWORD not in state and PASSWORD not in cookie
    assert PUPIL_ID not in state and PUPIL_ID[1:] not in state and "E1******64" in state


def test_a_name_taken_before_the_confirmation_sends_back_to_choose_again(client, pupil) -> None:
    """R-N4: if someone takes the chosen name before "complete registration", the account step comes back
    with the message beside the name and nothing is created for this person."""
    to_details_step(client)
    post_details(client)
    accounts.create_account("lin.hsiao-hua", PASSWORD, name="搶先的人")
    db.session.commit()
    resp = _post(client, "/account/apply/confirm", {})
    assert resp.status_code == 409 and 'id="username-error"' in resp.get_data(as_text=True)
    assert identity.get_person(pupil.id).account_id is None


def test_a_school_that_no_longer_lists_the_person_leaves_nothing(client, pupil) -> None:
    """R-N4: a failure half-way (the affiliation ended while the person typed) creates no account, no link."""
    to_details_step(client)
    post_details(client)
    factories.person(PUPIL_ID, AffiliationRecord(SCHOOL, "學生", active=False), name="林小華",
                     birth_date=dt.date(2016, 5, 21))
    db.session.commit()
    resp = _post(client, "/account/apply/confirm", {})
    assert resp.headers["Location"] == "/account/apply/school"
    assert "flash-error" in client.get("/account/apply/school").get_data(as_text=True)
    assert accounts.get_account_by_username("lin.hsiao-hua") is None
    assert identity.get_person(pupil.id).account_id is None and not _events("account.applied")


# -- the wizard itself (R-C2) ----------------------------------------------------------------------------
def test_a_later_step_without_the_earlier_ones_goes_back_to_the_first_missing(client, directory) -> None:
    """R-C2: a bookmark of a later step (or an expired state) leads to the first step still missing."""
    assert client.get("/account/apply/details").headers["Location"] == "/account/apply"
    _post(client, "/account/apply", {"role": "學生"})
    assert client.get("/account/apply/confirm").headers["Location"] == "/account/apply/school"
    assert client.get("/account/apply/done").headers["Location"] == "/account/apply"


def test_back_shows_earlier_answers_and_a_changed_answer_forgets_later_ones(client, pupil) -> None:
    """R-C2: going back shows the school chosen; changing the role drops the identification made for the other."""
    to_details_step(client)
    school_page = client.get("/account/apply/school").get_data(as_text=True)
    assert re.search(r'<option selected value="014601">|<option value="014601" selected>', school_page)
    assert re.search(r'<input checked[^>]*value="學生"', client.get("/account/apply").get_data(as_text=True))
    _post(client, "/account/apply", {"role": "教師"})
    assert client.get("/account/apply/details").headers["Location"] == "/account/apply/school"


def test_the_school_cascade_works_one_submit_at_a_time(client, directory) -> None:
    """R-C2, R-N4: without JavaScript, submitting only the county shows its districts, without an error."""
    _post(client, "/account/apply", {"role": "學生"})
    resp = _post(client, "/account/apply/school", {"county": "01", "district": "", "level": "", "school": ""})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "板橋區" in html and "新店區" in html and "error-summary" not in html
    empty = _post(client, "/account/apply/school", {"county": "", "district": "", "level": "", "school": ""})
    assert empty.status_code == 400 and "error-summary" in empty.get_data(as_text=True)


def test_every_step_speaks_english_too_and_keeps_the_state(client, pupil) -> None:
    """R-C2: the language switch works on a step in the middle: the page comes back in English, same answers."""
    to_details_step(client)
    html = client.get("/account/apply/check?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html and "林小華" in html and "step 5 of 7" in html
    zh = client.get("/account/apply/check?lang=zh-TW").get_data(as_text=True)
    assert '<html lang="zh-Hant-TW">' in zh and "林小華" in zh


def test_a_next_from_the_login_page_is_kept_for_signing_in(client, pupil) -> None:
    """R-C2, R-L1: an application started from the login page (with next) ends with a sign-in link back to it."""
    client.get("/account/apply?next=/oauth/authorize%3Fclient_id%3Drp1")
    apply_fully(client)
    done = client.get("/account/apply/done").get_data(as_text=True)
    assert 'href="/login?next=/oauth/authorize?client_id%3Drp1&amp;login_hint=' in done
    client.get("/account/apply?next=https://evil.example/")
    assert client.get("/account/apply/done").headers["Location"] == "/account/apply"


def test_identification_is_rate_limited(app, client, pupil) -> None:
    """R-N3: after recover_failures_per_id misses on one number the step answers 429, even with the right data."""
    to_person_step(client)
    for _ in range(app.extensions["idp.settings"].recover_failures_per_id):
        assert post_person(client, name="猜猜看", nid=PUPIL_ID, birthday="2016-05-21").status_code == 404
    assert post_person(client, name="林小華", nid=PUPIL_ID, birthday="2016-05-21").status_code == 429


# -- the services the wizard uses -----------------------------------------------------------------------
def test_set_current_school_takes_only_a_school_that_lists_the_person(app, pupil) -> None:
    """R-C2, R-C4: the current school moves only to a school with an active affiliation; a change is audited."""
    from idp.errors import InvalidField

    with pytest.raises(InvalidField):
        identity.set_current_school(pupil, HIGH, actor="t")
    identity.set_current_school(pupil, SCHOOL, actor="t")
    identity.set_current_school(pupil, SCHOOL, actor="t")
    assert pupil.current_school_code == SCHOOL and len(_events("identity.school_set")) == 1


def test_own_data_gives_the_number_only_as_a_masked_object(app, pupil, proxy_pupil) -> None:
    """R-C2, R-S4: own_data hands the password rules a NationalId (masked when printed) and the birthday."""
    own = identity.own_data(pupil)
    assert isinstance(own["national_id"], NationalId) and str(own["national_id"]) == "E1******64"
    assert own["national_id"].appears_in("x25837464") and own["birthday"] == dt.date(2016, 5, 21)
    assert identity.own_data(proxy_pupil)["birthday"] is None


def test_sealed_passwords_need_both_halves(app) -> None:
    """R-N3: the sealed password opens only with its own key; a wrong or missing half gives nothing."""
    sealed, key = apply_services.seal(PASSWORD)
    _, other_key = apply_services.seal(PASSWORD)
    assert apply_services.unseal(sealed, key) == PASSWORD
    assert apply_services.unseal(sealed, other_key) is None and apply_services.unseal(sealed, None) is None
    assert PASSWORD not in sealed and key not in sealed


def test_masked_account_names(app) -> None:
    """R-C6: an existing account's name is shown as its first two and last two characters."""
    from idp.accounts.services import mask_username

    assert mask_username("student01") == "st*****01"
    assert mask_username("abcdef") == "ab**ef"
