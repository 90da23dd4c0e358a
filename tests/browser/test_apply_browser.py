"""申請帳號 in a real browser (issue 10 "Done when"; R-C2, R-C3, R-C6, R-H1): a person walks the wizard in
zh-TW, then signs in to a demo app with the new account; the seed's answers (no data, already has an
account, disabled); the "can't find my school" report reaching the console's queue; the walk with the
keyboard alone; every new page passes axe-core (WCAG 2.1 A + AA) in zh-TW and in English.

The people are the demo's applicants (``DEMO_APPLICANTS``, README): 林小華 (county pupil), 張志明 (webHR
teacher), 黃佳穎 (proxy-platform pupil, month and day of birth only).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_helpers import captcha_answer, check_page, outbox, settle, sign_in, with_lang
from e2e_helpers import demo_rp_process, env_without_proxies, free_port

from idp.demo.commands import DEMO_APPLICANTS

pytestmark = [pytest.mark.browser, pytest.mark.live]

LOCALES = ["zh-TW", "en"]
PUPIL, TEACHER, PROXY_PUPIL = DEMO_APPLICANTS
PICKS = {  # county, district, level, school name, as the pickers show them
    "014601": ("新北市", "板橋區", "國小", "新北市板橋區板橋國民小學"),
    "014701": ("新北市", "新店區", "實驗教育", "新北市新店區信賢種籽親子實驗小學"),
}
PASSWORD = "sunny morning at the river"




def _step(page: Any) -> str:
    return page.locator("[data-apply-step]").get_attribute("data-apply-step")


def _submit(page: Any) -> None:
    """Press the form's button and wait for the page it leads to (the post, any redirect, the next page)."""
    with page.expect_navigation():
        page.locator("main form button[type=submit]").last.click()
    settle(page)


# -- walking the wizard with a mouse -------------------------------------------------------------------
def _choose_school(page: Any, school_code: str) -> None:
    """The cascade as a person uses it: each choice fills the next list (schools.js)."""
    county, district, level, school = PICKS[school_code]
    for select, label in (("#county", county), ("#district", district), ("#level", level), ("#school", school)):
        page.locator(f"{select} option", has_text=label).first.wait_for(state="attached")
        page.select_option(select, label=label)


def _type_personal_data(page: Any, live: Any, spec: Any, name: str | None = None) -> None:
    page.fill("#name", name or spec.name)
    page.fill("#national_id", spec.national_id)
    page.fill("#birthday", spec.birthday)
    page.fill("#captcha_code", captcha_answer(live, page))


def _walk_to_details(page: Any, live: Any, axe: Any, spec: Any, locale: str = "zh-TW") -> None:
    """Steps 1–6 (role … confirm identity), checking each page with axe."""
    page.goto(with_lang(live.base + "/account/apply?restart=1", locale))
    assert _step(page) == "start"
    check_page(page, axe, locale)
    page.check(f"input[name=role][value={spec.role}]")
    _submit(page)
    assert _step(page) == "school"
    check_page(page, axe, locale)
    _choose_school(page, spec.school_code)
    _submit(page)
    assert _step(page) == "school_confirm" and PICKS[spec.school_code][3] in page.inner_text("main")
    check_page(page, axe, locale)
    _submit(page)
    assert _step(page) == "person"
    check_page(page, axe, locale)
    _type_personal_data(page, live, spec)
    _submit(page)
    assert _step(page) == "check", page.inner_text("main")
    main = page.inner_text("main")
    masked = spec.national_id[:2] + "******" + spec.national_id[-2:]
    assert spec.name in main and masked in main and spec.national_id not in page.content()
    check_page(page, axe, locale)
    _submit(page)
    assert _step(page) == "details"
    check_page(page, axe, locale)


def _choose_account(page: Any, username: str, email: str = "", mobile: str = "") -> None:
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    page.fill("#email", email)
    page.fill("#mobile", mobile)
    _submit(page)


def _apply(page: Any, live: Any, axe: Any, spec: Any, username: str) -> None:
    _walk_to_details(page, live, axe, spec)
    _choose_account(page, username, f"{username}@example.edu.tw", "0912-345-678")
    assert _step(page) == "confirm", page.inner_text("main")
    assert page.locator("[data-username]").inner_text() == username and PASSWORD not in page.content()
    check_page(page, axe)
    _submit(page)
    assert _step(page) == "done"
    assert page.locator("main [data-username]").inner_text() == username
    check_page(page, axe)


@pytest.fixture(scope="module")
def rp(live: Any) -> Iterator[str]:
    """A demo relying party of this module's own (the demo app, as ``make run`` serves it, registered as
    ``apply-rp``): the new accounts sign in to it."""
    from idp.extensions import db
    from idp.oidc import registration

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with live.app.app_context():
        reg = registration.create_client({
            "name": "申請帳號測試應用程式", "redirect_uris": [f"{base}/callback"],
            "post_logout_redirect_uris": [f"{base}/"], "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid profile email phone eduinfo guid", "token_endpoint_auth_method": "client_secret_basic",
            "id_token_signed_response_alg": "RS256", "subject_type": "pairwise", "require_real_name": False,
            "skip_consent": False}, "browser-tests", client_id="apply-rp")
        db.session.commit()
    env_file = live.env["IDP_KEYS_DIR"] + "-apply-rp.env"
    with open(env_file, "w", encoding="utf-8") as fh:
        fh.write(f"DEMO_RP_ISSUER={live.base}\nDEMO_RP_CLIENT_ID=apply-rp\nDEMO_RP_CLIENT_SECRET={reg.secret}\n"
                 f"DEMO_RP_BASE_URL={base}\n")
    with demo_rp_process(dict(env_without_proxies(), DEMO_RP_ENV_FILE=env_file), base) as running:
        yield running


def _sign_in_to_rp(page: Any, live: Any, rp: str, username: str) -> str:
    """The new account signs in to the demo app through the login and consent pages; the app's page text."""
    page.goto(rp + "/")
    page.click("#login")
    page.wait_for_selector("input[name=password]")  # the login page: the authorization request's answer
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form:has(input[name=password]) [type=submit]").click()
    page.wait_for_selector("input[name=allow]")  # back at the authorization request: its consent page
    page.click("input[name=allow]")
    page.wait_for_url(rp + "/")
    return page.inner_text("main") if page.locator("main").count() else page.inner_text("body")


# -- the walks ----------------------------------------------------------------------------------------
def test_a_proxy_platform_pupil_applies_and_signs_in_to_the_demo_app(page, live, axe, rp) -> None:
    """R-C2, R-S3: 黃佳穎, a pupil the proxy platform knows by month and day of birth only, applies in zh-TW
    (each page passes axe) and signs in to the demo app: a real-name cloud account at her school."""
    _apply(page, live, axe, PROXY_PUPIL, "huang.chiaying")
    text = _sign_in_to_rp(page, live, rp, "huang.chiaying")
    assert "黃佳穎" in page.inner_text("#greeting")
    assert "urn:tw:edu:sso:acr:cloud" in page.inner_text("#id-claims")
    edu = page.inner_text("#eduinfo")
    assert "新北市新店區信賢種籽親子實驗小學" in edu and "學生" in edu, text


def test_a_teacher_applies_and_signs_in_to_the_demo_app(page, live, axe, rp) -> None:
    """R-C2: 張志明 applies with the role 教師 and signs in to the demo app, where eduinfo says 教師."""
    _apply(page, live, axe, TEACHER, "chang.chihming")
    _sign_in_to_rp(page, live, rp, "chang.chihming")
    assert "張志明" in page.inner_text("#greeting")
    assert "urn:tw:edu:sso:acr:cloud" in page.inner_text("#id-claims")
    edu = page.inner_text("#eduinfo")
    assert "新北市板橋區板橋國民小學" in edu and "教師" in edu


@pytest.mark.parametrize("locale", LOCALES)
def test_every_apply_page_passes_axe(page, live, axe, locale) -> None:
    """R-C2, R-N4: each step, its error states and the no-data answer pass axe in zh-TW and English; focus
    goes to the error summary after a refused form (nothing is created: the walk stops at the confirmation)."""
    page.goto(with_lang(live.base + "/account/apply?restart=1", locale))
    _submit(page)  # no role chosen
    assert page.evaluate("document.activeElement.id") == "error-summary"
    check_page(page, axe, locale)
    # no data: a name the school does not have
    page.check("input[name=role][value=學生]")
    _submit(page)
    _choose_school(page, PUPIL.school_code)
    _submit(page)
    _submit(page)
    _type_personal_data(page, live, PUPIL, name="林小畫")
    _submit(page)
    assert page.locator("[data-answer=no_data]").count() == 1
    assert "資訊組長" in page.inner_text("main")
    check_page(page, axe, locale)
    # the whole walk up to the confirmation, with a refused password on the way
    _walk_to_details(page, live, axe, PUPIL, locale)
    _choose_account(page, "lin.hsiaohua", mobile="12345")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.locator("#error-summary a[href='#mobile']").count() == 1
    check_page(page, axe, locale)
    _choose_account(page, "lin.hsiaohua")
    assert _step(page) == "confirm"
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_person_with_an_account_is_sent_to_forgot_password(page, live, axe, locale) -> None:
    """R-C6: the demo student (王小明, who has an account) is told so, with the name masked, and led to 忘記密碼."""
    page.goto(with_lang(live.base + "/account/apply?restart=1", locale))
    page.check("input[name=role][value=學生]")
    _submit(page)
    _choose_school(page, "014601")
    _submit(page)
    _submit(page)
    page.fill("#name", "王小明")
    page.fill("#national_id", "A123456789")
    page.fill("#birthday", "2016-05-21")
    page.fill("#captcha_code", captcha_answer(live, page))
    _submit(page)
    assert page.locator("[data-answer=exists]").count() == 1
    assert "st***nt" in page.inner_text("main")
    assert page.locator("main a[href='/account/recover/password']").count() == 1
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_pupil_with_a_disabled_account_is_sent_to_activation(page, live, axe, locale) -> None:
    """R-C6, R-C5: a pupil whose account was disabled for inactivity is led to 啟用帳號, not given a new one."""
    import datetime as dt

    import factories

    from idp.accounts import services as accounts
    from idp.extensions import db
    from idp.identity import services as identity
    from idp.identity.nationalid import check_digit
    from idp.sources.base import AffiliationRecord

    nid = "L12233445" + check_digit("L12233445") if locale == "zh-TW" else "L22233445" + check_digit("L22233445")
    username = f"sleepy.{locale.lower().replace('-', '')}"
    with live.app.app_context():
        person = factories.person(nid, AffiliationRecord("014601", "學生", grade=5), name="吳怡君",
                                  birth_date=dt.date(2014, 2, 3))
        account = accounts.create_account(username, PASSWORD, name="吳怡君", kind="cloud")
        identity.link_account(person, account, actor="browser-tests")
        accounts.disable(account, reason="inactivity", actor="inactivity-rule")
        db.session.commit()
    page.goto(with_lang(live.base + "/account/apply?restart=1", locale))
    page.check("input[name=role][value=學生]")
    _submit(page)
    _choose_school(page, "014601")
    _submit(page)
    _submit(page)
    page.fill("#name", "吳怡君")
    page.fill("#national_id", nid)
    page.fill("#birthday", "2014-02-03")
    page.fill("#captcha_code", captcha_answer(live, page))
    _submit(page)
    assert page.locator("[data-answer=disabled]").count() == 1
    assert page.locator("main a[href='/account/recover/activate']").count() == 1
    check_page(page, axe, locale)


def test_keyboard_only_walk_of_apply(page, live, axe) -> None:
    """R-C2 (issue 10 "Done when"): 林小華 applies with Tab, Enter, Space, arrow keys and typing only (no
    mouse), from the first page to "your account is ready"."""
    kb = page.keyboard

    def tab_to(selector: str, limit: int = 60) -> None:
        for _ in range(limit):
            if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
                return
            kb.press("Tab")
        raise AssertionError(f"Tab never reached {selector} on {page.url}")

    def enter_on_submit() -> None:
        tab_to("main form button[type=submit]")
        with page.expect_navigation():  # the form's post, then the next step's page
            kb.press("Enter")
        page.wait_for_load_state()

    def pick(selector: str, label: str) -> None:
        page.locator(f"{selector} option", has_text=label).first.wait_for(state="attached")
        page.wait_for_function("s => !document.querySelector(s).disabled", arg=selector)
        tab_to(selector)
        for _ in range(80):
            if page.evaluate("s => { const e = document.querySelector(s); return e.options[e.selectedIndex].text; }",
                             selector) == label:
                return
            kb.press("ArrowDown")
        raise AssertionError(f"{label} not reached in {selector}")

    def type_into(selector: str, text: str) -> None:
        tab_to(selector)
        kb.type(text)

    page.goto(live.base + "/account/apply?restart=1")
    tab_to("input[name=role]")
    kb.press("Space")  # the first role, 學生
    assert page.evaluate("document.querySelector('input[name=role]:checked').value") == "學生"
    enter_on_submit()
    county, district, level, school = PICKS[PUPIL.school_code]
    pick("#county", county)
    pick("#district", district)
    pick("#level", level)
    pick("#school", school)
    enter_on_submit()
    assert _step(page) == "school_confirm"
    enter_on_submit()
    assert _step(page) == "person"
    type_into("#name", PUPIL.name)
    type_into("#national_id", PUPIL.national_id)
    tab_to("#birthday")
    year, month, day = PUPIL.birthday.split("-")
    kb.type(month + day + year)  # Chromium's date field here reads mm/dd/yyyy and moves on by itself
    assert page.eval_on_selector("#birthday", "e => e.value") == PUPIL.birthday
    type_into("#captcha_code", captcha_answer(live, page))
    enter_on_submit()
    assert _step(page) == "check", page.inner_text("main")
    enter_on_submit()
    assert _step(page) == "details"
    type_into("#username", "lin.hsiaohua")
    type_into("#password", PASSWORD)
    type_into("#password_again", PASSWORD)
    type_into("#email", "hua@example.edu.tw")
    enter_on_submit()
    assert _step(page) == "confirm", page.inner_text("main")
    enter_on_submit()
    assert _step(page) == "done"
    check_page(page, axe)
    page.goto(with_lang(page.url, "en"))
    check_page(page, axe, "en")
    tab_to("main a.button")
    kb.press("Enter")
    page.wait_for_url(lambda url: "/login" in url)


# -- 我找不到我的學校 and the help pages ---------------------------------------------------------------
def test_a_school_missing_report_reaches_the_console_queue(page, new_page, live, axe) -> None:
    """R-C3: from the school picker, "我找不到我的學校" → the report → thanks; the operator finds it in the console's
    queue, answers it by e-mail (the reporter's mail is in the outbox) and closes it. Each page passes axe."""
    page.goto(live.base + "/account/apply?restart=1")
    page.check("input[name=role][value=學生]")
    _submit(page)
    with page.expect_navigation():
        page.locator("a[href='/help/school-missing']").click()
    check_page(page, axe)
    page.select_option("#county", label="連江縣")
    page.fill("#school_name", "連江縣立敬恆國民中學")
    page.fill("#email", "reporter@example.com")
    page.fill("#message", "清單裡沒有我們學校。")
    page.fill("#captcha_code", captcha_answer(live, page))
    _submit(page)
    report_id = page.locator("[data-report]").get_attribute("data-report")
    check_page(page, axe)

    console = new_page()
    sign_in(console, live, "operator")
    for locale in LOCALES:
        console.goto(with_lang(live.base + "/admin/support", locale))
        assert console.locator(f"tr[data-report='{report_id}']").count() == 1
        check_page(console, axe, locale)
    with console.expect_navigation():
        console.locator(f"tr[data-report='{report_id}'] a").click()
    assert "連江縣立敬恆國民中學" in console.inner_text("main") and "reporter@example.com" in console.inner_text("main")
    check_page(console, axe, "en")
    console.fill("#answer-note", "已加入學校名單，請重新申請帳號。")
    with console.expect_navigation():
        console.locator("form:has(#answer-note) [type=submit]").click()
    assert console.locator(f"[data-report='{report_id}'][data-status=answered]").count() == 1
    mails = [m for m in outbox(live) if m.to == "reporter@example.com"]
    assert mails and "已加入學校名單" in mails[0].text
    console.locator("main form:not(:has(#answer-note)) [type=submit]").click()
    console.wait_for_url(lambda url: url.endswith("/admin/support"))
    console.goto(live.base + "/admin/support?status=closed")
    assert console.locator(f"tr[data-report='{report_id}']").count() == 1
    check_page(console, axe, "en")


@pytest.mark.parametrize("locale", LOCALES)
def test_help_pages_pass_axe(page, live, axe, locale) -> None:
    """R-H1, R-C3: 常見問題, 聯絡我們 and the report form (also with errors, focus on the summary) pass axe."""
    page.goto(with_lang(live.base + "/help", locale))
    assert page.locator("#no-data").count() == 1 and "04-22220507" in page.inner_text("main")
    check_page(page, axe, locale)
    with page.expect_navigation():
        page.locator("footer a[href='/help/contact']").click()
    assert "oidcservice@mail.edu.tw" in page.inner_text("main")
    check_page(page, axe, locale)
    page.goto(with_lang(live.base + "/help/school-missing", locale))
    check_page(page, axe, locale)
    _submit(page)
    assert page.evaluate("document.activeElement.id") == "error-summary"
    check_page(page, axe, locale)
