"""The hosted login page, SSO session and logout as a person meets them."""

from __future__ import annotations

import pytest
from conftest import PASSWORD, csrf_token, login

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
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    first = client.get_cookie("idp_sso").value
    assert "王小明" in client.get("/").get_data(as_text=True)
    token = csrf_token(client, "/login?force=1")
    client.post("/login", data={"username": "student1", "password": PASSWORD, "force": "1", "csrf_token": token})
    assert client.get_cookie("idp_sso").value != first
    assert [e.actor for e in events("login.success")] == ["student1", "student1"]


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


def test_account_locks_after_repeated_failures(client, student, app) -> None:
    """R-N3: after N failures the account is refused with 429 and Retry-After, even with the right password."""
    limit = app.extensions["idp.settings"].login_failures_per_account
    for _ in range(limit):
        assert login(client, "student1", "wrong-password").status_code == 401
    resp = login(client, "student1", PASSWORD)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    assert events("login.locked")


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
