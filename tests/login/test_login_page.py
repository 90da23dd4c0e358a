"""The login page's menu and county area (R-L1, R-L3), and the captcha after repeated failures (R-N3,
issue 10 item 13 and its "Done when": 50 wrong passwords, then the owner gets in)."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import PASSWORD, csrf_from, csrf_token, login
from login_helpers import answer, captcha_on, login_with_captcha

from idp import create_app
from idp.extensions import db, store
from idp.security import ratelimit
from idp.security.models import AuditEvent

MENU = ("/account/recover/account", "/account/recover/password", "/account/recover/activate", "/account/apply",
        "/account/join", "/help", "/help/contact")


def main_of(html: str) -> str:
    return html[html.index("<main"):html.index("</main>")]


def links(html: str) -> dict[str, str]:
    """The page's links inside <main>, by path (the footer has its own)."""
    return {urlsplit(h).path: h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', main_of(html))}


def failures() -> int:
    return len(db.session.execute(db.select(AuditEvent).filter_by(event="login.failure")).scalars().all())


# -- the page ----------------------------------------------------------------------------------
def test_login_page_offers_the_menu_a_person_looks_for(client) -> None:
    """R-L3: the login page links 忘記帳號, 忘記密碼, 啟用帳號, 申請帳號, 一般會員註冊, 常見問題 and 聯絡我們."""
    found = links(client.get("/login").get_data(as_text=True))
    assert set(MENU) <= set(found), set(MENU) - set(found)
    assert all("?" not in found[path] for path in MENU)  # nothing to carry: plain paths


def test_menu_links_keep_next_and_the_language(client) -> None:
    """R-L3, R-L1: every menu link carries the sign-in's `next` and a language other than zh-TW, so a
    detour through "forgot password" comes back to the app, in the same language."""
    target = "/oauth/authorize?client_id=rp1&state=xyz"
    html = client.get("/login", query_string={"next": target, "ui_locales": "en"}).get_data(as_text=True)
    found = links(html)
    for path in MENU:
        query = parse_qs(urlsplit(found[path]).query)
        assert query == {"next": [target], "ui_locales": ["en"]}, found[path]
    # A browser that never saw the login page (a link opened elsewhere) still gets English.
    fresh = client.application.test_client()
    assert '<html lang="en">' in fresh.get(found["/account/join"], follow_redirects=True).get_data(as_text=True)


def test_refused_sign_in_keeps_next_for_the_menu_and_the_language_switch(client, student) -> None:
    """R-L3, R-N4: after a wrong password the page still carries `next` in its links and its language switch."""
    page = client.get("/login?next=%2Faccount%2Fapps").get_data(as_text=True)
    action = re.search(r'<form method="post" action="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert urlsplit(action).path == "/login"
    html = client.post(action, data={"username": "student1", "password": "wrong-password", "next": "/account/apps",
                                     "csrf_token": csrf_from(page)}).get_data(as_text=True)
    assert "next=%2Faccount%2Fapps" in links(html)["/account/join"]
    switch = re.search(r'<nav class="lang".*?</nav>', html, re.S).group(0)
    assert "next=%2Faccount%2Fapps" in switch


def test_county_area_is_marked_and_left_empty(client) -> None:
    """R-L1: the place of the county-account area (issue 12) is on the page, marked, empty and hidden."""
    html = client.get("/login").get_data(as_text=True)
    section = re.search(r'<section id="county-login"[^>]*>(.*?)</section>', html, re.S)
    assert section is not None and section.group(1).strip() == ""
    assert "hidden" in section.group(0) and 'data-issue="12"' in section.group(0)


def test_home_page_signed_out_is_the_login_page_with_its_menu(client) -> None:
    """R-L3: the site's home page, signed out, is the login page with the menu."""
    assert set(MENU) <= set(links(client.get("/").get_data(as_text=True)))


# -- the captcha after failures ----------------------------------------------------------------
def test_captcha_appears_after_the_free_failures_and_stays_on_the_page(client, student, app) -> None:
    """R-N3: up to the free failures no captcha; from then on the answer page, and the page opened
    again, show one."""
    free = app.extensions["idp.settings"].login_free_failures
    for _ in range(free - 1):
        assert captcha_on(login(client, "student1", "wrong-password").get_data(as_text=True)) is None
    last = login(client, "student1", "wrong-password")
    assert last.status_code == 401 and captcha_on(last.get_data(as_text=True))
    assert captcha_on(client.get("/login").get_data(as_text=True))
    # Another person at another browser typing this name gets it as soon as the name is known.
    other = app.test_client()
    assert captcha_on(other.get("/login?login_hint=student1").get_data(as_text=True))


def test_asking_for_the_captcha_is_not_a_failure(client, student, app) -> None:
    """R-N3: past the free failures, attempts without the captcha are refused (400, beside the captcha)
    without counting: nothing is tried, and the owner with the captcha gets in at once."""
    free = app.extensions["idp.settings"].login_free_failures
    for _ in range(free):
        login(client, "student1", "wrong-password")
    time.sleep(1.1)  # the gate the last failure closed (1 s)
    for _ in range(10):
        resp = login(client, "student1", "wrong-password")
        assert resp.status_code == 400
        html = resp.get_data(as_text=True)
        assert 'id="captcha-error"' in html and captcha_on(html)
    assert failures() == free
    assert login_with_captcha(client, "student1", PASSWORD).status_code == 302


def test_a_wrong_captcha_is_refused_beside_it_and_not_counted(client, student, app) -> None:
    """R-N3: a wrong captcha answer is refused beside the field with a new picture; the password is not tried."""
    free = app.extensions["idp.settings"].login_free_failures
    for _ in range(free):
        login(client, "student1", "wrong-password")
    time.sleep(1.1)
    html = client.get("/login").get_data(as_text=True)
    challenge = captcha_on(html)
    wrong = "0" if answer(challenge) != "0" * 5 else "1"
    resp = client.post("/login", data={"username": "student1", "password": PASSWORD, "csrf_token": csrf_from(html),
                                       "captcha": wrong * 5, "captcha-id": challenge})
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert 'id="captcha-error"' in page and captcha_on(page) not in (None, challenge)
    assert client.get_cookie("idp_sso") is None and failures() == free


def test_a_closed_gate_answers_first_and_keeps_the_captcha_unused(client, student, app) -> None:
    """R-N3: while the delay runs the page says how long to wait and shows the captcha; a captcha typed
    then is not used up (the person solves one picture, not two)."""
    free = app.extensions["idp.settings"].login_free_failures
    for _ in range(free):
        login(client, "student1", "wrong-password")
    html = client.get("/login").get_data(as_text=True)
    challenge = captcha_on(html)
    typed = answer(challenge)
    resp = client.post("/login", data={"username": "student1", "password": PASSWORD, "csrf_token": csrf_from(html),
                                       "captcha": typed, "captcha-id": challenge})
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert captcha_on(resp.get_data(as_text=True))
    time.sleep(int(resp.headers["Retry-After"]) + 0.1)
    again = client.post("/login", data={"username": "student1", "password": PASSWORD,
                                        "csrf_token": csrf_token(client), "captcha": typed, "captcha-id": challenge})
    assert again.status_code == 302


def test_the_owners_browser_is_not_asked_for_the_captcha(client, student, app) -> None:
    """R-N3: a browser that signed in to the account before is judged by its own record: strangers' failures
    bring it neither a delay nor a captcha."""
    assert login(client, "student1", PASSWORD).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/logout")})
    stranger = app.test_client()
    free = app.extensions["idp.settings"].login_free_failures
    for _ in range(free):
        login(stranger, "student1", "wrong-password")
    assert captcha_on(client.get("/login?login_hint=student1").get_data(as_text=True)) is None
    assert login(client, "student1", PASSWORD).status_code == 302


def test_authenticate_asks_for_the_captcha_before_reserving_anything(app, student) -> None:
    """R-N3: the service refuses with CaptchaRequired (400) past the free failures, counting nothing;
    with the captcha solved the right password passes."""
    from idp.accounts import services as accounts
    from idp.errors import IdpError

    free = app.extensions["idp.settings"].login_free_failures
    with app.test_request_context("/login", environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        for _ in range(free):
            with pytest.raises(accounts.InvalidCredentials):
                accounts.authenticate("student1", "wrong-password", "10.1.2.3")
        throttles = ratelimit.login_throttles("student1", "10.1.2.3")
        for throttle, identifier in throttles:  # time passes: the gates open
            store().delete(ratelimit._keys(throttle, identifier)[1])
        counts = [store().get(ratelimit._keys(t, i)[0]) for t, i in throttles]
        with pytest.raises(accounts.CaptchaRequired) as refused:
            accounts.authenticate("student1", PASSWORD, "10.1.2.3")
        assert isinstance(refused.value, IdpError) and refused.value.status == 400
        assert [store().get(ratelimit._keys(t, i)[0]) for t, i in throttles] == counts
        assert accounts.authenticate("student1", PASSWORD, "10.1.2.3", captcha_solved=True).username == "student1"
        db.session.commit()  # the audit rows, as the login view does


def test_past_free_and_wait_only_look(app) -> None:
    """R-N3: ratelimit.past_free says when a throttle's free failures are used up, and wait how long its
    gate stays closed, without reserving or counting anything."""
    throttle = ratelimit.Throttle("test.throttle", free=2, max_delay=5, window=60)
    items = [(throttle, "someone")]
    with app.test_request_context():
        assert not ratelimit.past_free(items) and ratelimit.wait(items) == 0
        ratelimit.attempt(items)
        assert not ratelimit.past_free(items) and ratelimit.wait(items) == 0
        ratelimit.attempt(items)  # the second: the free allowance is used up, a gate closes behind it
        assert ratelimit.past_free(items) and 0 < ratelimit.wait(items) <= 1
        assert store().get(ratelimit._keys(throttle, "someone")[0]) == b"2"
        ratelimit.succeeded(items)
        assert not ratelimit.past_free(items) and ratelimit.wait(items) == 0


def test_fifty_wrong_passwords_then_the_owner_gets_in_within_the_maximum_delay(app_config, student) -> None:
    """R-N3: 50 wrong passwords for one account from one address (each one really tried: captcha solved,
    the delays run out), then the owner from that address, with the captcha solved: in within
    login_max_delay (issue 10, "Done when")."""
    max_delay = 2
    app = create_app({**app_config, "login_max_delay": max_delay})
    guesser, owner = app.test_client(), app.test_client()
    with app.app_context():
        try:
            for _ in range(50):
                # Time passes between guesses: the gates' delays run out (driven through the store).
                for throttle, identifier in ratelimit.login_throttles("student1", "127.0.0.1"):
                    store().delete(ratelimit._keys(throttle, identifier)[1])
                html = guesser.get("/login").get_data(as_text=True)
                data = {"username": "student1", "password": "wrong-password", "csrf_token": csrf_from(html)}
                if captcha_on(html):
                    data.update({"captcha": answer(captcha_on(html)), "captcha-id": captcha_on(html)})
                assert guesser.post("/login", data=data).status_code == 401
            assert failures() == 50

            started = time.monotonic()
            for _ in range(3):
                resp = login_with_captcha(owner, "student1", PASSWORD, page="/login?login_hint=student1")
                if resp.status_code != 429:
                    break
                wait = int(resp.headers["Retry-After"])
                assert wait <= max_delay
                time.sleep(wait + 0.05)
            assert resp.status_code == 302 and owner.get_cookie("idp_sso") is not None
            assert time.monotonic() - started <= max_delay + 1.5
        finally:
            app.extensions["idp.store"].flush()


# -- the first-visit page, rendered once and filled in (issue 11) --------------------------------
AWKWARD_NEXT = ("/",
                "/oauth/authorize?client_id=rp1&state=a%22b%3Cc&nonce=1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
                "/account/apps?q=%E4%B8%AD%E6%96%87&x=\"<script>&amp;")


@pytest.mark.parametrize("with_counties", [False, True])
@pytest.mark.parametrize("query", ["", "ui_locales=en", "force=1", "switch=1&lang=en"])
def test_first_visit_page_is_the_page_rendered_in_full(app, monkeypatch, query, with_counties) -> None:
    """The login page most browsers get is filled into a copy rendered once per language and shape:
    for each `next` (quotes, markup, non-ASCII, a long authorization request) it must be the very
    HTML the template renders for that request, values escaped the same, nothing left from the
    request that filled the copy first."""
    from urllib.parse import quote

    from idp.federation.services import CountyChoice
    from idp.login import views
    from idp.login.forms import LoginForm

    if with_counties:
        monkeypatch.setitem(app.extensions, "idp.county_logins", lambda next_url: [
            CountyChoice("ntpc", "新北市", f"/login/county/ntpc?next={quote(next_url, safe='')}"),
            CountyChoice("tpe", "臺北市 <&>", "/login/county/tpe")])
    app.extensions.pop(views._FIRST_VISITS, None)
    force = "force=1" in query
    for _ in range(2):  # the first fills the copy, the second is served from it
        for next_url in AWKWARD_NEXT:
            with app.test_request_context(f"/login?{query}&next={quote(next_url, safe='')}"):
                fast = views._first_visit(next_url, force)
                form = LoginForm(formdata=None, data={"next": next_url, "force": "1" if force else ""})
                full, _, _ = views._page(form)
                assert fast == full
                assert "\ue000" not in fast and "\ue001" not in fast
    assert len(app.extensions[views._FIRST_VISITS]._pages) == 1


def test_first_visit_page_is_not_used_for_a_page_with_something_personal(client, app) -> None:
    """A flashed message, a prefilled account or a captcha is rendered the ordinary way: the copy
    must never hold (or show someone else) anything but the blank form."""
    from idp.login import views

    app.extensions.pop(views._FIRST_VISITS, None)
    html = client.get("/login", query_string={"login_hint": "someone1"}).get_data(as_text=True)
    assert 'value="someone1"' in html
    assert views._FIRST_VISITS not in app.extensions
    html = client.get("/login").get_data(as_text=True)
    assert 'value="someone1"' not in html and 'name="csrf_token"' in html
    assert len(app.extensions[views._FIRST_VISITS]._pages) == 1
