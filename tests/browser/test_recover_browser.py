"""帳號管理 in a real browser (issue 10 "Done when"; R-C1, R-C4, R-C5, R-C6, R-C7): a person walks 忘記帳號,
忘記密碼 with personal data (the affiliation moves to the chosen school) and with an e-mail code (read from the
outbox), and 啟用帳號, in zh-TW; each answer without data; the code page answers alike for an account that
exists and one that does not; every page passes axe-core (WCAG 2.1 A + AA) in zh-TW and in English, and the
console's accounts page too.

Each test makes its own pupil (a person from a county feed, merged through the resolver, and a linked cloud
account) in the live provider's database, so nothing here changes the demo accounts others sign in with.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from typing import Any

import pytest
from browser_helpers import captcha_answer, check_page, outbox, settle, sign_in, with_lang

pytestmark = [pytest.mark.browser, pytest.mark.live]

LOCALES = ["zh-TW", "en"]
OLD, NEW = "014601", "013301"
PICKS = {  # county, district, level, school name, as the pickers show them
    "014601": ("新北市", "板橋區", "國小", "新北市板橋區板橋國民小學"),
    "013301": ("新北市", "板橋區", "國中", "新北市立板橋國民中學"),
}
BIRTHDAY = "2012-08-17"
OLD_PASSWORD = "kites and paper boats"
NEW_PASSWORD = "green frog under the bridge"




def _on(page: Any) -> str:
    return page.locator("[data-recover-page]").get_attribute("data-recover-page")


def _submit(page: Any) -> None:
    page.locator("main form button[type=submit]").last.click()
    settle(page)


def _new_id() -> str:
    from idp.identity.nationalid import check_digit

    first9 = "Y1" + f"{secrets.randbelow(10 ** 7):07d}"
    return first9 + check_digit(first9)


def make_pupil(live: Any, *, disabled: str | None = None, account: bool = True, verified_email: bool = False,
               schools: tuple[str, ...] = (OLD, NEW), name: str = "黃小美") -> dict[str, Any]:
    """A pupil listed at ``schools`` (the first is the current one), with a cloud account unless told."""
    import factories

    from idp.accounts import services as accounts
    from idp.extensions import db
    from idp.identity import services as identity
    from idp.sources.base import AffiliationRecord

    nid = _new_id()
    username = f"mei.{nid[-6:].lower()}"
    email = f"{username}@example.edu.tw"
    with live.app.app_context():
        person = factories.person(nid, *(AffiliationRecord(code, "學生", grade=6) for code in schools), name=name,
                                  birth_date=dt.date.fromisoformat(BIRTHDAY))
        person.current_school_code = schools[0]
        if account:
            made = accounts.create_account(username, OLD_PASSWORD, name=name, kind="cloud", email=email,
                                           email_verified=verified_email)
            identity.link_account(person, made, actor="browser-tests")
            if disabled:
                accounts.disable(made, reason=disabled, actor="inactivity-rule" if disabled == "inactivity"
                                 else "operator")
        db.session.commit()
        return {"person_id": person.id, "nid": nid, "username": username, "email": email, "name": name}


def _person(live: Any, person_id: int) -> tuple[str | None, str]:
    """(current school, eduinfo's schoolid) as relying parties will see them."""
    from idp.extensions import db
    from idp.identity import services as identity

    with live.app.app_context():
        person = identity.get_person(person_id)
        answer = person.current_school_code, identity.eduinfo(person)["schoolid"]
        db.session.remove()
        return answer


def _account(live: Any, username: str) -> Any:
    from idp.accounts import services as accounts
    from idp.extensions import db

    with live.app.app_context():
        account = accounts.get_account_by_username(username)
        db.session.expunge(account)
        db.session.remove()
        return account


def _choose_school(page: Any, code: str) -> None:
    county, district, level, school = PICKS[code]
    for select, label in (("#county", county), ("#district", district), ("#level", level), ("#school", school)):
        page.locator(f"{select} option", has_text=label).first.wait_for(state="attached")
        page.select_option(select, label=label)


def _identify(page: Any, live: Any, axe: Any, flow: str, pupil: dict[str, Any], *, school: str = NEW,
              name: str | None = None, locale: str = "zh-TW") -> None:
    """School → confirm → personal data (each page checked with axe), submitted."""
    page.goto(with_lang(f"{live.base}/account/recover/{flow}/school", locale))
    assert _on(page) == "school"
    check_page(page, axe, locale)
    _choose_school(page, school)
    _submit(page)
    assert _on(page) == "school_confirm" and PICKS[school][3] in page.inner_text("main")
    check_page(page, axe, locale)
    _submit(page)
    assert _on(page) == "person"
    check_page(page, axe, locale)
    page.fill("#name", name or pupil["name"])
    page.fill("#national_id", pupil["nid"])
    page.fill("#birthday", BIRTHDAY)
    page.fill("#captcha_code", captcha_answer(live, page))
    _submit(page)


def _new_password(page: Any, password: str = NEW_PASSWORD) -> None:
    page.fill("#password", password)
    page.fill("#password_again", password)
    _submit(page)


def _signs_in(page: Any, live: Any, username: str, password: str) -> bool:
    page.goto(f"{live.base}/login?force=1")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.locator("form:has(input[name=password]) [type=submit]").click()
    page.wait_for_load_state()
    return "/login" not in page.url


# -- 忘記帳號 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("locale", LOCALES)
def test_forgot_account_shows_the_masked_account(page, live, axe, locale) -> None:
    """R-C1: ID number, birthday and the captcha show the account name masked; nothing else about the person."""
    pupil = make_pupil(live)
    page.goto(with_lang(live.base + "/account/recover/account", locale))
    assert _on(page) == "account"
    check_page(page, axe, locale)
    page.fill("#national_id", pupil["nid"])
    page.fill("#birthday", BIRTHDAY)
    page.fill("#captcha_code", captcha_answer(live, page))
    _submit(page)
    masked = pupil["username"][:2] + "*" * (len(pupil["username"]) - 4) + pupil["username"][-2:]
    assert page.locator("[data-answer=found] [data-username]").inner_text() == masked
    content = page.content()
    assert pupil["username"] not in content and pupil["name"] not in content and pupil["nid"] not in content
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_forgot_account_without_one_offers_to_apply(page, live, axe, locale) -> None:
    """R-C1, R-C6: an ID nobody has an account for → "no account yet" with 申請帳號."""
    page.goto(with_lang(live.base + "/account/recover/account", locale))
    page.fill("#national_id", _new_id())
    page.fill("#birthday", BIRTHDAY)
    page.fill("#captcha_code", captcha_answer(live, page))
    _submit(page)
    assert page.locator("[data-answer=no_account]").count() == 1
    assert page.locator("main a[href='/account/apply']").count() == 1
    check_page(page, axe, locale)


# -- 忘記密碼: personal data ---------------------------------------------------------------------------
def test_reset_with_personal_data_moves_the_affiliation_to_the_chosen_school(page, live, axe) -> None:
    """R-C4: a pupil moving up to junior high resets the password choosing the new school: the account and name
    are shown to confirm, the new password signs in, and eduinfo's school is now the chosen one."""
    pupil = make_pupil(live)
    assert _person(live, pupil["person_id"]) == (OLD, OLD)
    page.goto(live.base + "/account/recover/password")
    check_page(page, axe)
    page.locator("main a[href='/account/recover/password/school']").click()
    page.wait_for_load_state()
    _identify(page, live, axe, "password", pupil)
    assert _on(page) == "new_password", page.inner_text("main")
    assert page.locator("[data-username]").inner_text() == pupil["username"]
    assert pupil["name"] in page.inner_text("main") and pupil["nid"] not in page.content()
    check_page(page, axe)
    _new_password(page)
    assert _on(page) == "done" and page.locator("[data-username]").inner_text() == pupil["username"]
    check_page(page, axe)
    assert _person(live, pupil["person_id"]) == (NEW, NEW)
    assert not _signs_in(page, live, pupil["username"], OLD_PASSWORD)
    assert _signs_in(page, live, pupil["username"], NEW_PASSWORD)


@pytest.mark.parametrize("locale", LOCALES)
def test_each_answer_without_a_way_through_leads_somewhere(page, live, axe, locale) -> None:
    """R-C6: no personal data (ask the IT lead), no account (apply), a disabled account (activate), an active one
    at activation (sign in / forgot password): each answer has its way forward and passes axe."""
    pupil = make_pupil(live)
    _identify(page, live, axe, "password", pupil, name="黃大美", locale=locale)
    assert page.locator("[data-answer=no_data]").count() == 1 and "資訊組長" in page.inner_text("main")
    check_page(page, axe, locale)

    nobody = make_pupil(live, account=False)
    _identify(page, live, axe, "password", nobody, locale=locale)
    assert page.locator("[data-answer=no_account] a[href='/account/apply']").count() == 1
    check_page(page, axe, locale)

    disabled = make_pupil(live, disabled="operator")
    _identify(page, live, axe, "password", disabled, locale=locale)
    assert page.locator("[data-answer=disabled] a[href='/account/recover/activate']").count() == 1
    check_page(page, axe, locale)

    _identify(page, live, axe, "activate", pupil, locale=locale)
    assert page.locator("[data-answer=active] a[href='/account/recover/password']").count() == 1
    check_page(page, axe, locale)


# -- 啟用帳號 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("locale", LOCALES)
def test_a_disabled_pupil_activates_the_account(page, live, axe, locale) -> None:
    """R-C5: a pupil disabled by the inactivity rule identifies, sets a new password and signs in again."""
    pupil = make_pupil(live, disabled="inactivity", schools=(OLD,))
    page.goto(with_lang(live.base + "/account/recover/activate", locale))
    assert _on(page) == "activate"
    check_page(page, axe, locale)
    page.locator("main a[href='/account/recover/activate/school']").click()
    page.wait_for_load_state()
    _identify(page, live, axe, "activate", pupil, school=OLD, locale=locale)
    assert _on(page) == "new_password" and page.locator("[data-username]").inner_text() == pupil["username"]
    check_page(page, axe, locale)
    _new_password(page)
    assert _on(page) == "done"
    check_page(page, axe, locale)
    account = _account(live, pupil["username"])
    assert account.is_active and account.disabled_reason is None
    assert _signs_in(page, live, pupil["username"], NEW_PASSWORD)


# -- 忘記密碼: a code to the verified backup e-mail -----------------------------------------------------
def _ask_code(page: Any, live: Any, username: str, locale: str = "zh-TW") -> None:
    page.goto(with_lang(live.base + "/account/recover/password/code", locale))
    page.fill("#username", username)
    page.check("input[name=channel][value=email]")
    page.fill("#captcha_code", captcha_answer(live, page))
    _submit(page)


def _mail_code(live: Any, to: str) -> str:
    for _ in range(50):  # the worker sends it just after the page answered
        mails = [m for m in outbox(live) if m.to == to]
        if mails:
            return re.search(r"\b(\d{6})\b", mails[0].text).group(1)
        time.sleep(0.1)
    raise AssertionError(f"no code reached {to}")


@pytest.mark.parametrize("locale", LOCALES)
def test_reset_with_a_code_from_the_backup_email(page, live, axe, locale) -> None:
    """R-C4, R-C7: account name → the code sent to the confirmed backup e-mail (read from the outbox) → the code
    → a new password → sign in with it."""
    pupil = make_pupil(live, verified_email=True)
    page.goto(with_lang(live.base + "/account/recover/password/code", locale))
    assert _on(page) == "code"
    check_page(page, axe, locale)
    _ask_code(page, live, pupil["username"], locale)
    assert _on(page) == "code_enter"
    check_page(page, axe, locale)
    page.fill("#code", "000000")  # a wrong one first: the message beside the field
    _submit(page)
    assert page.locator("#code-error").count() == 1
    check_page(page, axe, locale)
    page.fill("#code", _mail_code(live, pupil["email"]))
    _submit(page)
    assert _on(page) == "code_new" and page.locator("[data-username]").inner_text() == pupil["username"]
    check_page(page, axe, locale)
    _new_password(page)
    assert _on(page) == "code_done"
    check_page(page, axe, locale)
    assert _signs_in(page, live, pupil["username"], NEW_PASSWORD)


def _normalised(html: str) -> str:
    html = re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "CSRF", html)
    return re.sub(r"/captcha/[A-Za-z0-9_-]{24}|value=\"[A-Za-z0-9_-]{24}\"", "CAPTCHA", html)


def test_the_code_page_answers_alike_for_an_account_and_a_name_nobody_has(new_page, live) -> None:
    """R-C4, R-N3: the answer to "send a code" is the same page (byte for byte, but for its tokens), reached as
    fast, for an account with a confirmed e-mail and for a name nobody has; only the first gets a mail."""
    pupil = make_pupil(live, verified_email=True)
    seen = []
    for name in (pupil["username"], "nobody." + secrets.token_hex(3)):
        page = new_page()
        page.goto(live.base + "/account/recover/password/code")
        page.fill("#username", name)
        page.fill("#captcha_code", captcha_answer(live, page))
        started = time.monotonic()
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.locator("main form button[type=submit]").last.click()
        page.wait_for_load_state()
        seen.append((posted.value.status, posted.value.headers.get("location"), page.url,
                     _normalised(page.content()), time.monotonic() - started))
    (s1, l1, u1, c1, t1), (s2, l2, u2, c2, t2) = seen
    assert (s1, l1, u1, c1) == (s2, l2, u2, c2)
    assert abs(t1 - t2) < 1.0, (t1, t2)
    _mail_code(live, pupil["email"])
    assert not [m for m in outbox(live) if m.to.startswith("nobody.")]


# -- the console's accounts page ---------------------------------------------------------------------
@pytest.mark.parametrize("locale", LOCALES)
def test_console_accounts_pages_pass_axe(page, live, axe, locale) -> None:
    """R-C5, R-N3: an operator finds a disabled pupil's account, sees why, enables and unlocks it; every page has
    no violation."""
    pupil = make_pupil(live, disabled="inactivity")
    sign_in(page, live, "operator")
    page.goto(with_lang(live.base + "/admin/accounts", locale))
    check_page(page, axe, locale)
    page.fill("#username", "no-such-account")
    page.locator("main form [type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("#username-error").count() == 1
    check_page(page, axe, locale)
    page.fill("#username", pupil["username"])
    page.locator("main form [type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("[data-account-status=disabled]").count() == 1
    check_page(page, axe, locale)
    page.locator("form[action$='/enable'] [type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("[data-account-status=active]").count() == 1
    check_page(page, axe, locale)
    page.locator("form[action$='/unlock'] [type=submit]").click()
    page.wait_for_load_state()
    page.locator("form[action$='/disable'] [type=submit]").click()  # no note: refused beside the field
    page.wait_for_load_state()
    assert page.locator("#disable-note-error").count() == 1
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_menu_and_choice_pages_pass_axe(page, live, axe, locale) -> None:
    """R-L3: 帳號管理's menu and the 忘記密碼 choice have no violation and link to every flow."""
    page.goto(with_lang(live.base + "/account/recover/", locale))
    for href in ("/account/recover/account", "/account/recover/password", "/account/recover/activate",
                 "/account/apply"):
        assert page.locator(f"main a[href='{href}']").count() == 1, href
    check_page(page, axe, locale)
    page.goto(with_lang(live.base + "/account/recover/password", locale))
    assert page.locator("main a[href='/account/recover/password/code']").count() == 1
    check_page(page, axe, locale)
