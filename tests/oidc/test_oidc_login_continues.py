"""The login POST of a sign-in made for an app answers the app's authorization request itself (issue 11):
the browser goes from the login form straight to the app with its code, one round trip fewer, and everything
the authorization endpoint would have decided on its own is decided the same way."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from helpers import PASSWORD, csrf_from
from joserfc import jwt
from joserfc.jwk import KeySet
from oidc_helpers import REDIRECT, Flow, authorize_params, query, redeem

from idp.extensions import db
from idp.login import sessions
from idp.oidc.models import Client


def _to_login(browser, client: Client, **extra: str) -> tuple[dict[str, str], str, str]:
    """An authorization request from a browser without a session: its parameters, its verifier, the login page."""
    params, verifier = authorize_params(client, **extra)
    resp = browser.get("/oauth/authorize", query_string=params)
    if resp.status_code == 200:  # the login page itself: its form posts to /login?next=…
        action = re.search(r'<form method="post" action="([^"]+)"', resp.get_data(as_text=True)).group(1)
        return params, verifier, action.replace("&amp;", "&")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login", resp.headers
    location = urlsplit(resp.headers["Location"])
    return params, verifier, f"{location.path}?{location.query}"


def _post_login(browser, login_page: str, username: str = "student1"):
    page = browser.get(login_page)
    assert page.status_code == 200
    return browser.post(login_page, data={"username": username, "password": PASSWORD,
                                          "csrf_token": csrf_from(page.get_data(as_text=True))})


def test_the_login_post_answers_with_the_apps_code(client, account, rp) -> None:
    """A remembered consent: the login POST redirects to the app with a code that redeems like any other (nonce,
    the new session's sid, PKCE), sets the session and device cookies, and the session knows the app (logout)."""
    rp.skip_consent = True
    db.session.commit()
    params, verifier, login_page = _to_login(client, rp)
    resp = _post_login(client, login_page)
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?"), location
    got = query(location)
    assert got["state"] == params["state"] and got["iss"] and got["code"]
    cookies = {c.split("=", 1)[0] for c in resp.headers.getlist("Set-Cookie")}
    assert {"idp_sso", "idp_device"} <= cookies, cookies

    tokens = redeem(client, rp, Flow(got["code"], verifier, params["nonce"], params))
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    claims = jwt.decode(tokens.json["id_token"], KeySet.import_key_set(client.get("/oauth/jwks").get_json())).claims
    assert claims["nonce"] == params["nonce"] and rp.client_id in claims["aud"]
    sid = client.get_cookie("idp_sso").value
    with client.application.test_request_context():
        assert claims["sid"] == sessions.public_sid(sid)
        assert rp.client_id in sessions.end_session(sid)  # the session's logout tells this app
        db.session.commit()  # its tokens revoked with it


def test_the_same_browser_then_gets_codes_without_the_login_page(client, account, rp) -> None:
    rp.skip_consent = True
    db.session.commit()
    _params, _verifier, login_page = _to_login(client, rp)
    assert _post_login(client, login_page).headers["Location"].startswith(REDIRECT)
    params, _ = authorize_params(rp)
    again = client.get("/oauth/authorize", query_string=params)
    assert again.status_code == 302 and again.headers["Location"].startswith(REDIRECT + "?code=")


def test_a_consent_to_ask_is_asked_on_its_own_page(client, account, rp) -> None:
    """No consent yet: the login POST sends the browser back to the authorization request, whose page asks."""
    _params, _verifier, login_page = _to_login(client, rp)
    resp = _post_login(client, login_page)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/oauth/authorize"
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200 and 'name="allow"' in page.get_data(as_text=True)


def test_an_app_requiring_a_real_name_still_refuses_a_member_on_its_page(client, make_account, make_client) -> None:
    make_account("member1", kind="member")
    rp = make_client("realname", require_real_name=True, skip_consent=True)
    _params, _verifier, login_page = _to_login(client, rp)
    resp = _post_login(client, login_page, "member1")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/oauth/authorize"
    refused = client.get(resp.headers["Location"])
    assert refused.status_code == 403 and 'data-error="real_name_required"' in refused.get_data(as_text=True)


def test_an_app_removed_meanwhile_gets_its_error_page_from_the_request_itself(client, account, rp) -> None:
    rp.skip_consent = True
    db.session.commit()
    _params, _verifier, login_page = _to_login(client, rp)
    db.session.delete(rp)
    db.session.commit()
    resp = _post_login(client, login_page)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/oauth/authorize"
    assert client.get_cookie("idp_sso") is not None  # signed in all the same
    page = client.get(resp.headers["Location"])
    assert page.status_code == 400 and "Location" not in page.headers


@pytest.mark.parametrize("extra", [{"prompt": "login"}, {"max_age": "0"}])
def test_a_fresh_sign_in_asked_for_is_answered_with_the_code(client, account, rp, extra) -> None:
    """prompt=login and max_age=0 with a live session: the login page again, and its POST goes on to the app (the
    request's note that it asked for this sign-in carries over), with an auth_time of now."""
    import time

    rp.skip_consent = True
    db.session.commit()
    _params, _verifier, login_page = _to_login(client, rp)
    assert _post_login(client, login_page).headers["Location"].startswith(REDIRECT)
    params, _ = authorize_params(rp, **extra)
    resp = client.get("/oauth/authorize", query_string=params)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
    location = urlsplit(resp.headers["Location"])
    time.sleep(1.01)  # auth_time has whole seconds: the new sign-in is later than the first
    before = int(time.time())
    done = _post_login(client, f"{location.path}?{location.query}")
    assert done.status_code == 302 and done.headers["Location"].startswith(REDIRECT + "?code="), done.headers
    sid = client.get_cookie("idp_sso").value
    with client.application.test_request_context(headers={"Cookie": f"idp_sso={sid}"}):
        assert sessions.current_session().auth_time >= before


def test_a_sign_in_for_a_page_of_ours_goes_there(client, account) -> None:
    token = csrf_from(client.get("/login?next=/account/apps").get_data(as_text=True))
    resp = client.post("/login?next=/account/apps", data={"username": "student1", "password": PASSWORD,
                                                          "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"] == "/account/apps"


def test_the_new_session_and_the_code_reach_the_store_in_one_round_trip(client, account, rp, monkeypatch) -> None:
    """Issue 11: the login POST that answers the app writes its session, the throttles it clears and the app's code
    together, in one batch sent once the sign-in is recorded."""
    from idp.store import Batch

    rp.skip_consent = True
    db.session.commit()
    _params, _verifier, login_page = _to_login(client, rp)
    page = client.get(login_page)
    written: list[list[str]] = []  # the keys each batch sent writes

    def counting(execute):
        def counted(self):
            written.append([str(args[0]) for name, args, _ in self._ops if name in ("set", "sadd")])
            return execute(self)
        return counted

    for cls in (Batch, *Batch.__subclasses__()):  # the in-process store's and Redis's
        monkeypatch.setattr(cls, "execute", counting(cls.execute))
    resp = client.post(login_page, data={"username": "student1", "password": PASSWORD,
                                         "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.headers["Location"].startswith(REDIRECT + "?code=")
    writing = [keys for keys in written if keys]
    assert len(writing) == 1, writing
    assert any(k.startswith("sso:") for k in writing[0]) and any(k.startswith("oidc:code:") for k in writing[0])
