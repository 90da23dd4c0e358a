"""The login page, member sign-up and the captcha after failures in a real browser (issue 10 "Done when";
R-L1, R-L3, R-A1, R-A3, R-N3): the menu reaches each page; a member signs up with the code from the
outbox, signs in to the demo app (which accepts members) and meets the real-name refusal at an app that
does not, whose 申請帳號 and "another account" links work; the captcha appears after failures and the
owner gets in. Every page of these walks passes axe-core (WCAG 2.1 A + AA) in zh-TW and in English.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from browser_helpers import HTML_LANG, captcha_answer, check_page, demo_password, outbox, settle, with_lang
from e2e_helpers import authorize_url, flask_cli

pytestmark = [pytest.mark.browser, pytest.mark.live]

LOCALES = ["zh-TW", "en"]
MENU = ("/account/recover/account", "/account/recover/password", "/account/recover/activate", "/account/apply",
        "/account/join", "/help", "/help/contact")
PASSWORD = "paper boats on the pond"




def _submit(page: Any) -> None:
    page.locator("main form:not(.switch-account) [type=submit]").last.click()
    settle(page)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _code_for(live: Any, address: str) -> str:
    message = next(m for m in outbox(live) if m.to == address)
    return re.search(r"\b(\d{6})\b", message.text).group(1)


def _demo_rp_secret(live: Any) -> str:
    env_file = Path(live.env["IDP_KEYS_DIR"]).parent / "rp.env"
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return values["DEMO_RP_CLIENT_SECRET"].strip()


# -- the login page and its menu -------------------------------------------------------------------
@pytest.mark.parametrize("locale", LOCALES)
def test_the_menu_reaches_each_page_keeping_next_and_language(page, live, axe, locale) -> None:
    """R-L3, R-L1: from the login page of a sign-in to the demo app, each menu entry (忘記帳號, 忘記密碼,
    啟用帳號, 申請帳號, 一般會員註冊, 常見問題, 聯絡我們) opens its page in the same language, carrying where the
    sign-in was going."""
    page.goto(with_lang(live.authorize_url(), locale))
    assert urlsplit(page.url).path == "/oauth/authorize"  # the login page, answered by the request itself
    check_page(page, axe, locale)
    login_url = page.url
    going_to = _query(page.locator("main form[method=post]").first.get_attribute("action"))["next"]
    assert urlsplit(going_to).path == "/oauth/authorize"
    for path in MENU:
        link = page.locator(f"main a[href^='{path}?']").first
        href = link.get_attribute("href")
        assert _query(href)["next"] == going_to, href
        with page.expect_navigation() as nav:
            link.click()
        assert nav.value.ok, (path, nav.value.status)
        assert urlsplit(page.url).path.startswith(path), page.url
        assert page.locator("html").get_attribute("lang") == HTML_LANG[locale], page.url
        assert page.locator("main h1").count() == 1, page.url
        page.goto(login_url)


@pytest.mark.parametrize("locale", LOCALES)
def test_login_page_with_the_captcha_passes_axe_and_the_owner_gets_in(new_page, live, axe, locale) -> None:
    """R-N3: after the free failures the login page shows the captcha (no violation, in either language); the
    owner then types the password and the captcha's answer and is in."""
    username = f"owner.{locale.lower().replace('-', '')}.{secrets.token_hex(2)}"
    flask_cli(live.env, "accounts", "create", username, "--password-stdin", "--name", "林小明", stdin=PASSWORD + "\n")
    page = new_page()
    page.goto(with_lang(live.base + "/login?next=%2Faccount%2Fapps", locale))
    free = live.app.extensions["idp.settings"].login_free_failures
    for n in range(free):
        assert page.locator("[data-captcha-id]").count() == 0, n
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", "not-my-password")
        _submit(page)
    assert page.locator("[data-captcha-id]").count() == 1
    assert page.evaluate("document.activeElement.id") == "error-summary"
    check_page(page, axe, locale)
    page.wait_for_timeout(1100)  # the 1 s delay after the last free failure
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=captcha]", captcha_answer(live, page))
    _submit(page)
    assert urlsplit(page.url).path == "/account/apps", page.url


def test_a_missing_captcha_is_asked_for_beside_its_field(new_page, live, axe) -> None:
    """R-N3, R-N4: a sign-in past the free failures sent without the captcha is refused beside the captcha (the
    error summary links to it), then the owner gets in with it."""
    username = f"owner.nocaptcha.{secrets.token_hex(2)}"
    flask_cli(live.env, "accounts", "create", username, "--password-stdin", stdin=PASSWORD + "\n")
    page = new_page()
    page.goto(live.base + "/login")
    free = live.app.extensions["idp.settings"].login_free_failures
    for _ in range(free):
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", "not-my-password")
        _submit(page)
    page.wait_for_timeout(1100)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    _submit(page)  # the captcha left empty
    assert page.locator("#captcha-error").count() == 1
    assert page.locator("#error-summary a[href='#captcha']").count() == 1
    check_page(page, axe)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=captcha]", captcha_answer(live, page))
    _submit(page)
    assert urlsplit(page.url).path == "/", page.url
    assert page.locator("input[name=password]").count() == 0  # signed in: the home page


# -- members ---------------------------------------------------------------------------------------
def test_member_signs_up_signs_in_to_the_demo_app_and_is_refused_where_real_names_are_required(
        page, live, axe) -> None:
    """R-A1, R-A3, R-L4: from the demo app's sign-in, 一般會員註冊 with the code from the outbox; back on the login
    page, sign in and allow the demo app, which gets a code whose ID token says "member"; at an app that requires
    real names the refusal page links to 申請帳號 (which opens) and to another account (the teacher then gets in);
    不是您？切換帳號 on the consent page signs out and asks the same request again."""
    url, params, verifier = authorize_url(live.base, live.demo_client_id, live.demo_redirect_uri)
    page.route(lambda u: u.startswith(live.demo_redirect_uri),
               lambda route: route.fulfill(status=200, body="demo app", content_type="text/plain"))
    page.goto(url)
    assert urlsplit(page.url).path == "/oauth/authorize" and page.locator("input[name=password]").count() == 1
    with page.expect_navigation():
        page.locator("main a[href^='/account/join?']").click()
    check_page(page, axe)
    address = f"member.{secrets.token_hex(3)}@example.com"
    username = f"member.{secrets.token_hex(3)}"
    page.fill("input[name=email]", address)
    _submit(page)
    assert urlsplit(page.url).path == "/account/join/code"
    check_page(page, axe)
    page.fill("input[name=code]", "000000" if _code_for(live, address) != "000000" else "111111")
    _submit(page)
    assert page.locator("#code-error").count() == 1
    assert page.evaluate("document.activeElement.id") == "error-summary"
    check_page(page, axe)
    page.fill("input[name=code]", _code_for(live, address))
    _submit(page)
    assert urlsplit(page.url).path == "/account/join/account"
    check_page(page, axe)
    page.fill("input[name=username]", username)
    page.fill("input[name=name]", "林家長")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_again]", PASSWORD)
    _submit(page)
    assert urlsplit(page.url).path == "/account/join/done"
    check_page(page, axe)
    assert page.locator("[data-username]").inner_text() == username

    # Back to the demo app's sign-in: the login page goes on to the same authorization request.
    page.locator("main a.button").click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/login"
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    _submit(page)
    assert page.locator("input[name=allow]").count() == 1  # the demo app's consent
    assert username in page.inner_text("main")
    check_page(page, axe)

    # 不是您？切換帳號: signed out, the same request asks for an account; the member signs in again.
    page.locator("[data-switch-account]").click()
    settle(page)
    assert urlsplit(page.url).path == "/login" and page.input_value("input[name=username]") == ""
    assert _query(_query(page.url)["next"])["state"] == params["state"]
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    _submit(page)
    page.click("input[name=allow]")
    page.wait_for_url(lambda u: u.startswith(live.demo_redirect_uri))
    got = _query(page.url)
    assert got["state"] == params["state"] and got["code"]
    tokens = requests.post(f"{live.base}/oauth/token", auth=(live.demo_client_id, _demo_rp_secret(live)), data={
        "grant_type": "authorization_code", "code": got["code"], "redirect_uri": live.demo_redirect_uri,
        "code_verifier": verifier}, timeout=10).json()
    claims = requests.get(f"{live.base}/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                          timeout=10).json()
    assert claims.get("email") == address and claims.get("email_verified") is True

    # An app that requires real names (the demo app asking for the cloud level): the refusal page.
    response = page.goto(live.authorize_url(acr_values="urn:tw:edu:sso:acr:cloud"))
    assert response.status == 403
    check_page(page, axe)
    refusal = page.url
    with page.expect_navigation() as nav:
        page.locator("main a[href='/account/apply']").click()
    assert nav.value.ok and urlsplit(page.url).path.startswith("/account/apply")
    page.goto(refusal)
    page.locator("main a[data-switch-account]").click()
    settle(page)
    assert urlsplit(page.url).path == "/login" and page.input_value("input[name=username]") == ""
    page.fill("input[name=username]", "teacher")
    page.fill("input[name=password]", demo_password("teacher"))
    _submit(page)
    if page.locator("input[name=allow]").count():
        page.click("input[name=allow]")
    page.wait_for_url(lambda u: u.startswith(live.demo_redirect_uri))
    assert "code" in _query(page.url)


def test_member_sign_up_pages_pass_axe_in_english(page, live, axe) -> None:
    """R-A1: each step of 一般會員註冊 (and the consent and refusal pages it leads to) has no violation in English."""
    locale = "en"
    page.goto(with_lang(live.base + "/login", locale))
    page.locator("main a[href^='/account/join']").click()
    page.wait_for_load_state()
    check_page(page, axe, locale)
    address = f"member.{secrets.token_hex(3)}@example.com"
    username = f"member.{secrets.token_hex(3)}"
    page.fill("input[name=email]", "not an address")
    _submit(page)
    assert page.locator("#email-error").count() == 1
    check_page(page, axe, locale)
    page.fill("input[name=email]", address)
    _submit(page)
    check_page(page, axe, locale)
    page.fill("input[name=code]", _code_for(live, address))
    _submit(page)
    page.fill("input[name=username]", "Bad Name!")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_again]", PASSWORD)
    _submit(page)
    assert page.locator("#username-error").count() == 1
    check_page(page, axe, locale)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_again]", PASSWORD)
    _submit(page)
    assert urlsplit(page.url).path == "/account/join/done"
    check_page(page, axe, locale)
    page.goto(f"{live.base}/login?force=1&next={quote('/account/apps', safe='')}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    _submit(page)
    page.goto(live.authorize_url(scope="openid profile email phone"))
    check_page(page, axe, locale)  # the consent page with 切換帳號
    response = page.goto(live.authorize_url(acr_values="urn:tw:edu:sso:acr:cloud"))
    assert response.status == 403
    check_page(page, axe, locale)
