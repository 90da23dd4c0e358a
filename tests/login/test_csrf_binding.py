"""The form session (CSRF secret) is bound to the sign-in (R-N3, issue 9 item 5)."""

from __future__ import annotations

import re

from helpers import PASSWORD, csrf_token, login


def _session_cookie(client) -> str:
    return client.get_cookie("idp_session").value


def test_a_planted_form_cookie_and_its_token_do_not_work_in_a_signed_in_browser(app, client, student) -> None:
    """R-N3: a sibling site planting its own idp_session cookie and token cannot post forms as the signed-in person."""
    attacker = app.test_client()
    page = attacker.get("/login").get_data(as_text=True)
    planted_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    planted_cookie = _session_cookie(attacker)

    assert login(client, "student1", PASSWORD).status_code == 302
    client.set_cookie("idp_session", planted_cookie, domain="localhost")  # the SSO cookie stays the victim's
    forged = client.post("/logout", data={"csrf_token": planted_token})
    assert forged.status_code == 400 and "您已登出" not in forged.get_data(as_text=True)
    assert "王小明" in client.get("/").get_data(as_text=True)  # still signed in


def test_the_form_session_is_renewed_at_sign_in_and_sign_out(client, student) -> None:
    """R-N3: a form token from before signing in (or out) is no good afterwards."""
    before = csrf_token(client)
    assert login(client, "student1", PASSWORD).status_code == 302
    stale = client.post("/logout", data={"csrf_token": before})
    assert stale.status_code == 400
    fresh = client.post("/logout", data={"csrf_token": csrf_token(client, "/logout")})
    assert fresh.status_code == 200 and "您已登出" in fresh.get_data(as_text=True)


def test_after_a_session_expires_the_login_page_works_at_the_first_try(app, client, student) -> None:
    """R-N3: a browser left open past the SSO session's lifetime (the store forgot it; the cookies stayed) gets
    a login page whose form is accepted, not refused once as expired."""
    assert login(client, "student1", PASSWORD).status_code == 302
    app.extensions["idp.store"].delete(f"sso:{client.get_cookie('idp_sso').value}")  # expired in the store
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = client.post("/login", data={"username": "student1", "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
