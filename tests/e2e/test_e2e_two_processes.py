"""Two processes, one state (issue 2 item 14, R-N2): two server processes on two ports share one
PostgreSQL database and one Redis. A person signs in on one, the code is redeemed on the other,
and a logout on either ends the session on both."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests
from e2e_helpers import Browser, authorize_url, query

pytestmark = pytest.mark.live


def _redeem(base: str, demo_client: dict[str, str], code: str, verifier: str) -> dict:
    resp = requests.post(base + "/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": demo_client["redirect_uri"],
        "code_verifier": verifier}, auth=(demo_client["client_id"], demo_client["client_secret"]), timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _sign_in_on(browser: Browser, base: str, demo_client: dict[str, str]) -> tuple[dict, dict]:
    url, params, verifier = authorize_url(base, demo_client["client_id"], demo_client["redirect_uri"])
    got = query(browser.authorize(url))
    assert got["state"] == params["state"]
    return got, {"verifier": verifier}


def _silent_authorize(browser: Browser, base: str, demo_client: dict[str, str]) -> dict[str, str]:
    url, _params, _verifier = authorize_url(base, demo_client["client_id"], demo_client["redirect_uri"],
                                            prompt="none")
    resp = browser.get(url)
    assert resp.status_code == 302, resp.text[:500]
    return query(resp.headers["Location"])


def _logout(browser: Browser, base: str, id_token: str, demo_client: dict[str, str]) -> None:
    params = {"id_token_hint": id_token, "post_logout_redirect_uri": demo_client["post_logout"], "state": "bye"}
    resp = browser.get(f"{base}/oauth/logout?{urlencode(params)}")
    assert resp.status_code == 302 and resp.headers["Location"].startswith(demo_client["post_logout"]), resp.text


def test_login_on_one_redeem_on_other_logout_on_either(live_server, second_server, demo_client) -> None:
    """R-N2: code issued by process A is redeemed at process B; logout on B ends the session on A, and
    logout on A ends it on B."""
    a, b = live_server.base, second_server.base
    browser = Browser((a, b))

    got, extra = _sign_in_on(browser, a, demo_client)
    tokens = _redeem(b, demo_client, got["code"], extra["verifier"])
    assert tokens["token_type"] == "Bearer" and tokens["id_token"]
    info = requests.get(a + "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                        timeout=10)
    assert info.status_code == 200 and info.json()["preferred_username"] == "teacher"
    # The SSO session is shared: B issues a code silently for the session made on A.
    assert "code" in _silent_authorize(browser, b, demo_client)

    _logout(browser, b, tokens["id_token"], demo_client)
    assert _silent_authorize(browser, a, demo_client)["error"] == "login_required"
    assert _silent_authorize(browser, b, demo_client)["error"] == "login_required"

    # Round two, the other way: sign in on B, log out on A.
    got, extra = _sign_in_on(browser, b, demo_client)
    tokens = _redeem(a, demo_client, got["code"], extra["verifier"])
    assert "code" in _silent_authorize(browser, a, demo_client)
    _logout(browser, a, tokens["id_token"], demo_client)
    assert _silent_authorize(browser, b, demo_client)["error"] == "login_required"


def test_code_replayed_on_other_process_is_refused(live_server, second_server, demo_client) -> None:
    """R-O1: a code redeemed on one process cannot be redeemed again on another; its tokens are revoked."""
    browser = Browser((live_server.base, second_server.base))
    got, extra = _sign_in_on(browser, live_server.base, demo_client)
    tokens = _redeem(live_server.base, demo_client, got["code"], extra["verifier"])
    replay = requests.post(second_server.base + "/oauth/token", data={
        "grant_type": "authorization_code", "code": got["code"], "redirect_uri": demo_client["redirect_uri"],
        "code_verifier": extra["verifier"]}, auth=(demo_client["client_id"], demo_client["client_secret"]),
        timeout=10)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    info = requests.get(second_server.base + "/oauth/userinfo",
                        headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10)
    assert info.status_code == 401
