"""The hosted login page, SSO session and logout as a person meets them."""

from __future__ import annotations

import time

import pytest
from helpers import PASSWORD, csrf_token, login
from login_helpers import login_with_captcha

from idp import create_app
from idp.accounts.models import Account
from idp.extensions import db
from idp.security.models import AuditEvent


def events(name: str) -> list[AuditEvent]:
    return db.session.execute(db.select(AuditEvent).filter_by(event=name)).scalars().all()


def test_login_page_is_chinese_first_and_english_on_request(client) -> None:
    """R-L1: the login page speaks Traditional Chinese by default, English when asked."""
    zh = client.get("/login").get_data(as_text=True)
    assert "登入" in zh and 'lang="zh-Hant-TW"' in zh
    en = client.get("/login?lang=en").get_data(as_text=True)
    assert "Sign in" in en and 'lang="en"' in en


def test_login_sets_hardened_cookie_and_rotates_session(client, student) -> None:
    """R-L1, R-N3: a successful login sets an HttpOnly SameSite=Lax SSO cookie, new at every login."""
    resp = login(client, "Student1", PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("idp_sso="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age" not in cookie  # gone with the browser
    first = client.get_cookie("idp_sso").value
    assert "王小明" in client.get("/").get_data(as_text=True)
    token = csrf_token(client, "/login?force=1")
    again = client.post("/login", data={"username": "student1", "password": PASSWORD, "force": "1",
                                        "csrf_token": token})
    assert len([c for c in again.headers.getlist("Set-Cookie") if c.startswith("idp_sso=")]) == 1
    assert client.get_cookie("idp_sso").value != first
    replay = client.application.test_client()
    replay.set_cookie("idp_sso", first, domain="localhost")
    assert "王小明" not in replay.get("/").get_data(as_text=True)  # the old id is dead, not just replaced
    assert [e.actor for e in events("login.success")] == ["Student1", "student1"]  # as typed


def test_cookie_is_secure_outside_loopback(app_config) -> None:
    """R-N3: with a public https issuer the SSO and session cookies are Secure."""
    app = create_app({**app_config, "issuer": "https://sso.example.edu.tw"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.extensions["idp.settings"].secure_cookies is True


def test_wrong_password_and_unknown_account_look_the_same(client, student) -> None:
    """R-L1: no way to tell whether an account exists from the error."""
    wrong = login(client, "student1", "not-the-password")
    unknown = login(client, "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert "帳號或密碼錯誤" in wrong.get_data(as_text=True)
    assert "帳號或密碼錯誤" in unknown.get_data(as_text=True)
    assert client.get_cookie("idp_sso") is None
    assert "not-the-password" not in " ".join(str(e.data) for e in events("login.failure"))


def test_disabled_account_is_told_so(client, student) -> None:
    """R-C6: a disabled account gets a clear message pointing to activation."""
    student.status = "disabled"
    db.session.commit()
    resp = login(client, "student1", PASSWORD)
    assert resp.status_code == 403 and "停用" in resp.get_data(as_text=True)


def test_wrong_passwords_slow_down_instead_of_locking(app_config, student) -> None:
    """R-N3: past the free failures each attempt waits a short, growing delay and needs the captcha; the owner
    then gets in."""
    app = create_app({**app_config, "login_free_failures": 3, "login_max_delay": 1})
    client = app.test_client()
    with app.app_context():
        try:
            for _ in range(3):
                assert login(client, "student1", "wrong-password").status_code == 401
            refused = login(client, "student1", PASSWORD)
            assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 1
            assert "1 秒" in refused.get_data(as_text=True)
            time.sleep(1.1)
            assert login(client, "student1", PASSWORD).status_code == 400  # the captcha, first
            assert login_with_captcha(client, "student1", PASSWORD).status_code == 302
            assert events("login.locked")[-1].data["reason"] == "throttled"
        finally:
            app.extensions["idp.store"].flush()


def test_owner_browser_keeps_working_while_someone_guesses(client, student, app) -> None:
    """R-N3: a browser that signed in to the account before (device cookie) is not slowed by others' failures."""
    assert login(client, "student1", PASSWORD).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/logout")})
    attacker = app.test_client()
    for _ in range(30):
        assert login(attacker, "student1", "wrong-password").status_code in (400, 401, 429)
    assert login(attacker, "student1", PASSWORD).status_code in (400, 429)  # the guesser waits, or solves a captcha
    assert login(client, "student1", PASSWORD).status_code == 302  # the owner does not


def test_one_address_guessing_many_accounts_does_not_lock_out_the_others_behind_it(client, student, app) -> None:
    """R-N3: sixty failures across accounts from a school's one address leave its other pupils signing in."""
    attacker = app.test_client()
    for n in range(60):
        assert login(attacker, f"pupil{n % 12}x", "wrong-password").status_code == 401
    assert login(client, "student1", PASSWORD).status_code == 302


def test_concurrent_guesses_cannot_overshoot_the_free_failures(app) -> None:
    """R-N3: twenty guesses at once get exactly the free allowance tried, the rest are told to wait."""
    import threading

    from idp.errors import RateLimited
    from idp.security import ratelimit

    tried: list[int] = []
    start = threading.Barrier(20)

    def guess() -> None:
        with app.test_request_context("/login"):
            throttle = ratelimit.login_pair()
            start.wait()
            try:
                ratelimit.attempt([(throttle, "student1|10.0.0.1")])
            except RateLimited:
                return
            tried.append(1)

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(tried) == app.extensions["idp.settings"].login_free_failures


def test_a_newline_in_a_username_cannot_forge_a_log_line(client, student, caplog) -> None:
    """R-N3: control characters typed into the login form are escaped in every log line."""
    import logging

    caplog.set_level(logging.INFO)
    login(client, "mallory\n2026-12-02 INFO idp.audit login.success actor=operator", "wrong-password")
    lines = [r.getMessage() for r in caplog.records if "mallory" in r.getMessage()]
    assert lines and all("\n" not in line for line in lines)
    assert any("mallory\\x0a2026-12-02" in line for line in lines)


def test_ip_limit_spans_accounts(app_config, student) -> None:
    """R-N3: one address guessing across many accounts is stopped by the per-IP limit."""
    app = create_app({**app_config, "login_failures_per_ip": 3})
    client = app.test_client()
    with app.app_context():
        for n in range(3):
            assert login(client, f"user{n}x", "wrong-password").status_code == 401
        assert login(client, "student1", PASSWORD).status_code == 429
        app.extensions["idp.store"].flush()


def test_password_rehashed_when_parameters_change(app_config, student) -> None:
    """R-N3: raising the argon2 cost rehashes the password at the next login."""
    old_hash = student.password_hash
    app = create_app({**app_config, "argon2_time_cost": 2})
    client = app.test_client()
    with app.app_context():
        assert login(client, "student1", PASSWORD).status_code == 302
        account = db.session.get(Account, student.id)
        assert account.password_hash != old_hash and "t=2" in account.password_hash
        assert events("password.rehashed")
        app.extensions["idp.store"].flush()


def test_missing_csrf_token_is_a_clear_400(client, student) -> None:
    """R-N4: a form without its CSRF token gets a 400 page, not a 500."""
    resp = client.post("/login", data={"username": "student1", "password": PASSWORD})
    assert resp.status_code == 400
    assert "表單" in resp.get_data(as_text=True)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_next_never_redirects_off_site(client, student, target) -> None:
    """R-N3: the login page's `next` cannot send a person to another site."""
    resp = login(client, "student1", PASSWORD, next_url=target)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


def test_logout_ends_the_session_for_every_process(client, student, app_config) -> None:
    """R-L4, R-N2: logging out on one app instance ends the session seen by another instance."""
    shared = bool(app_config.get("redis_url"))  # the embedded store is per process by design
    login(client, "student1", PASSWORD)
    sid = client.get_cookie("idp_sso").value
    other = create_app(app_config)
    other_client = other.test_client()
    other_client.set_cookie("idp_sso", sid, domain="localhost")
    if shared:
        with other.app_context():
            assert "王小明" in other_client.get("/").get_data(as_text=True)
    resp = client.post("/logout", data={"csrf_token": csrf_token(client, "/logout")})
    assert resp.status_code == 200 and "您已登出" in resp.get_data(as_text=True)
    assert client.get_cookie("idp_sso") is None
    assert "王小明" not in client.get("/").get_data(as_text=True)
    if shared:
        with other.app_context():
            assert "王小明" not in other_client.get("/").get_data(as_text=True)
    assert events("logout")


def test_sso_cookie_is_secure_on_a_public_https_issuer(app_config, student) -> None:
    """R-L1, R-N3: outside loopback the SSO cookie a login sets carries Secure, HttpOnly, SameSite=Lax."""
    app = create_app({**app_config, "issuer": "https://sso.example.edu.tw"})
    client = app.test_client()
    with app.app_context():
        resp = login(client, "student1", PASSWORD)
        app.extensions["idp.store"].flush()
    assert resp.status_code == 302
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("__Host-idp_sso="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie  # host-only: a sibling *.edu.tw site cannot set or replace it


def test_login_hint_prefills_the_account(client) -> None:
    """R-L1: a relying party's login_hint fills in the account field."""
    html = client.get("/login?login_hint=student1").get_data(as_text=True)
    assert 'value="student1"' in html


def test_live_session_skips_the_form_unless_forced(client, student) -> None:
    """R-L1: with a live session the login page goes straight on; `force` asks for the password again."""
    login(client, "student1", PASSWORD)
    resp = client.get("/login?next=/account/apps")
    assert resp.status_code == 302 and resp.headers["Location"] == "/account/apps"
    forced = client.get("/login?next=/account/apps&force=1")
    assert forced.status_code == 200 and 'type="password"' in forced.get_data(as_text=True)


def test_login_url_keeps_only_a_relative_next(app) -> None:
    """R-N3: login_url sends the browser back to the same site only, carrying force and login_hint."""
    from urllib.parse import parse_qs, urlsplit

    from idp.login.sessions import login_url

    with app.test_request_context("/oauth/authorize"):
        url = login_url("http://localhost/oauth/authorize?client_id=a&prompt=login", force=True,
                        login_hint="student1")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.path == "/login" and not parts.netloc
    assert query == {"next": ["/oauth/authorize?client_id=a&prompt=login"], "force": ["1"],
                     "login_hint": ["student1"]}


def test_throttle_message_says_how_long_and_counts_name_variants(client, student, app) -> None:
    """R-N3: case variants of one account share its failure count; the refusal says how many seconds to wait."""
    free = app.extensions["idp.settings"].login_free_failures
    for n in range(free):
        login(client, "STUDENT1" if n % 2 else "student1", "wrong-password")
    resp = login(client, "Student1", PASSWORD)
    assert resp.status_code == 429
    html = resp.get_data(as_text=True)
    assert "登入失敗次數過多" in html and f"{resp.headers['Retry-After']} 秒" in html
    assert client.get_cookie("idp_sso") is None


def test_success_clears_the_failure_count(client, student, app) -> None:
    """R-N3: a correct password before the free failures run out resets the count."""
    free = app.extensions["idp.settings"].login_free_failures
    for _ in range(free - 1):
        login(client, "student1", "wrong-password")
    assert login(client, "student1", PASSWORD).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/logout")})
    client.delete_cookie("idp_device")  # judged as a new browser again
    for _ in range(free - 1):
        assert login(client, "student1", "wrong-password").status_code == 401
    assert login(client, "student1", PASSWORD).status_code == 302


def test_logout_page_asks_before_signing_out(client, student) -> None:
    """R-L4: GET /logout shows a confirm button and does not end the session by itself."""
    login(client, "student1", PASSWORD)
    page = client.get("/logout")
    assert page.status_code == 200 and "登出" in page.get_data(as_text=True)
    assert "王小明" in client.get("/").get_data(as_text=True)


def test_end_session_announces_the_apps_that_took_part(client, student, app) -> None:
    """R-L4: ending a session returns and signals the clients that used it (for back-channel logout)."""
    from idp.login import sessions

    login(client, "student1", PASSWORD)
    sid = client.get_cookie("idp_sso").value
    heard: list[dict] = []

    def listener(sender, **kw):
        heard.append({"sid": sender, **kw})

    with app.test_request_context():
        sessions.add_client(sid, "app-one")
        sessions.add_client(sid, "app-two")
        with sessions.session_ended.connected_to(listener):
            ended = sessions.end_session(sid)
        db.session.commit()  # as the logout view does
    assert ended == {"app-one", "app-two"}
    # Announced by its public sid: listeners (logout tokens, token revocation) never see the cookie's value.
    assert heard == [{"sid": sessions.public_sid(sid), "client_ids": {"app-one", "app-two"},
                      "account_id": student.id}]
    assert heard[0]["sid"] != sid
    assert "王小明" not in client.get("/").get_data(as_text=True)


def test_account_disabled_during_a_session_is_signed_out(client, student) -> None:
    """R-C6, R-L1: once an account is disabled its live session no longer counts as signed in."""
    login(client, "student1", PASSWORD)
    student.status = "disabled"
    db.session.commit()
    html = client.get("/").get_data(as_text=True)
    assert "王小明" not in html and 'type="password"' in html
    assert client.get("/login?next=/account/apps").status_code == 200


def test_session_records_how_and_at_what_level(client, student, app) -> None:
    """R-A2, R-A3: a password sign-in records amr=pwd; only a cloud account linked to a known person reaches cloud."""
    import factories

    from idp.identity import services as identity
    from idp.login import sessions

    def level() -> tuple[list[str], str]:
        login(client, "student1", PASSWORD)
        with app.test_request_context(headers={"Cookie": f"idp_sso={client.get_cookie('idp_sso').value}"}):
            sso = sessions.current_session()
        assert sso is not None and sso.account_id == student.id
        return sso.amr, sso.acr

    assert level() == (["pwd"], "urn:tw:edu:sso:acr:member")  # "cloud" in name only: no person behind it
    identity.link_account(factories.person("A123456789"), student, actor="test")
    db.session.commit()
    assert level() == (["pwd"], "urn:tw:edu:sso:acr:cloud")


def test_forced_login_asks_the_same_person_for_the_password(client, student) -> None:
    """R-L1: re-authentication pre-fills the signed-in account and asks only for the password."""
    login(client, "student1", PASSWORD)
    html = client.get("/login?force=1&next=/account/apps").get_data(as_text=True)
    assert 'value="student1"' in html and 'type="password"' in html


def test_forged_session_cookie_is_just_signed_out(client, student) -> None:
    """R-N3: a cookie naming another store key (``<sid>:clients``) or junk is treated as no session."""
    login(client, "student1", PASSWORD)
    sid = client.get_cookie("idp_sso").value
    from idp.login import sessions

    with client.application.test_request_context():
        sessions.add_client(sid, "app-one")
    for forged in (f"{sid}:clients", "x" * 500, "../../etc"):
        other = client.application.test_client()
        other.set_cookie("idp_sso", forged, domain="localhost")
        resp = other.get("/")
        assert resp.status_code == 200 and 'type="password"' in resp.get_data(as_text=True)


def test_a_sign_in_reads_its_account_and_person_in_one_statement(client, student, app) -> None:
    """Issue 11: the assurance level a password sign-in needs (is a known person behind the account?) is read with
    the account row, not by a second SELECT."""
    from helpers import sql_statements

    with sql_statements() as statements:
        login(client, "student1", PASSWORD)
    about_person = [s for s in statements if s.startswith("SELECT") and "person" in s]
    assert len(about_person) == 1 and "FROM account" in about_person[0], about_person


def test_a_sign_in_records_when_it_happened(client, student) -> None:
    """R-C5: a password sign-in stores its time (the console's "last sign-in"; the inactivity rule reads it)."""
    import datetime as dt

    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    login(client, "student1", PASSWORD)
    db.session.expire_all()
    fresh = db.session.get(Account, student.id)
    when = fresh.last_login_at if fresh.last_login_at.tzinfo else fresh.last_login_at.replace(tzinfo=dt.UTC)
    assert when >= before
