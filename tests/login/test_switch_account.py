"""Signing in as someone else from the consent page and from the real-name refusal (R-L4, R-A3), and what a
new user met in issue 10 item 14: a missing redirect_uri reported as such, consent audited by account name."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import factories
from factories import AccountFactory, ClientFactory
from helpers import PASSWORD, csrf_from, login

from idp.extensions import db
from idp.security.models import AuditEvent

REDIRECT = "https://rp.example.org/callback"


def authorize_path(client_id: str, **extra: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(secrets.token_bytes(32)).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid profile",
              "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
              "code_challenge_method": "S256", **extra}
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def relative(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def events(name: str) -> list[AuditEvent]:
    return db.session.execute(db.select(AuditEvent).filter_by(event=name).order_by(AuditEvent.id)).scalars().all()


def real_name(account: object, national_id: str = "A123456789") -> None:
    from idp.identity import services as identity

    identity.link_account(factories.person(national_id), account, actor="test")
    db.session.commit()


def test_not_you_signs_out_and_asks_the_same_request_for_an_account(client) -> None:
    """R-L4: 不是您？切換帳號 on the consent page signs the person out and returns to the same authorization
    request with prompt=select_account; the next person signs in and sees the consent as themselves."""
    rp = ClientFactory(client_id="rp1")
    AccountFactory(username="sibling01")
    AccountFactory(username="pupil0001")
    assert login(client, "sibling01", PASSWORD).status_code == 302
    request_path = authorize_path(rp.client_id, login_hint="sibling01")
    consent = client.get(request_path)
    html = consent.get_data(as_text=True)
    assert consent.status_code == 200 and "sibling01" in html
    action = re.search(r'<form class="inline switch-account" method="post" action="([^"]+)"', html).group(1)
    switched = client.post(action.replace("&amp;", "&"), data={"csrf_token": csrf_from(html)})
    assert switched.status_code == 302 and client.get_cookie("idp_sso") is None
    again = query(switched.headers["Location"])
    original = query(request_path)
    assert again.pop("prompt") == "select_account" and "login_hint" not in again
    original.pop("login_hint")
    assert again == original  # the same request
    assert [e.actor for e in events("logout")] == ["sibling01"]

    to_login = client.get(relative(switched.headers["Location"]))
    assert to_login.status_code == 302 and urlsplit(to_login.headers["Location"]).path == "/login"
    page = client.get(relative(to_login.headers["Location"])).get_data(as_text=True)
    assert re.search(r'name="username"[^>]*value=""', page)  # empty: someone else signs in
    signed = client.post("/login", data={"username": "pupil0001", "password": PASSWORD, "csrf_token": csrf_from(page),
                                         "next": query(to_login.headers["Location"])["next"]})
    assert signed.status_code == 302
    back = client.get(relative(signed.headers["Location"]))
    assert back.status_code == 200 and "pupil0001" in back.get_data(as_text=True)  # consent, as the new person


def test_not_you_needs_the_forms_csrf_token(client) -> None:
    """R-N3: no other site can sign a person out through 切換帳號: without the form's token it is refused."""
    rp = ClientFactory(client_id="rp1")
    AccountFactory(username="pupil0001")
    login(client, "pupil0001", PASSWORD)
    path = authorize_path(rp.client_id)
    resp = client.post(path.replace("/oauth/authorize", "/oauth/authorize/switch-account"), data={})
    assert resp.status_code == 400 and client.get_cookie("idp_sso") is not None


def test_real_name_refusal_offers_apply_and_signing_in_with_another_account(client) -> None:
    """R-A3: a member meets the refusal page, which links to 申請帳號 and to signing in with another account;
    the second returns to the same request, and a real-name account then gets its code."""
    rp = ClientFactory(client_id="realname", require_real_name=True, skip_consent=True)
    AccountFactory(username="member01")
    teacher = AccountFactory(username="teacher01", kind="cloud")
    real_name(teacher)
    login(client, "member01", PASSWORD)
    request_path = authorize_path(rp.client_id)
    refused = client.get(request_path)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403 and 'href="/account/apply"' in html
    other = re.search(r'<a href="([^"]+)" data-switch-account>', html).group(1).replace("&amp;", "&")
    assert query(other)["prompt"] == "select_account" and query(other)["state"] == query(request_path)["state"]
    to_login = client.get(other)
    assert urlsplit(to_login.headers["Location"]).path == "/login"
    page = client.get(relative(to_login.headers["Location"])).get_data(as_text=True)
    assert re.search(r'name="username"[^>]*value=""', page)
    signed = client.post("/login", data={"username": "teacher01", "password": PASSWORD, "csrf_token": csrf_from(page),
                                         "next": query(to_login.headers["Location"])["next"], "force": "1"})
    assert signed.status_code == 302 and signed.headers["Location"].startswith(REDIRECT)  # straight on to the app
    assert "code" in query(signed.headers["Location"])


def test_missing_redirect_uri_is_reported_as_missing(client) -> None:
    """R-N4: an authorization request without redirect_uri is told so, not that its address is unregistered."""
    rp = ClientFactory(client_id="rp1")
    resp = client.get(authorize_path(rp.client_id, redirect_uri=None))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Location" not in resp.headers
    assert 'data-error="missing_redirect_uri"' in html and "redirect_uri" in html
    unregistered = client.get(authorize_path(rp.client_id, redirect_uri="https://evil.example/cb"))
    assert 'data-error="invalid_redirect_uri"' in unregistered.get_data(as_text=True)


def test_consent_events_name_the_account_like_sign_ins(client) -> None:
    """R-N3: consent.granted and consent.revoked are audited with the account name as actor, as logins are."""
    rp = ClientFactory(client_id="rp1")
    AccountFactory(username="pupil0001")
    login(client, "pupil0001", PASSWORD)
    path = authorize_path(rp.client_id)
    html = client.get(path).get_data(as_text=True)
    allowed = client.post(path, data={"csrf_token": csrf_from(html), "allow": "y"})
    assert allowed.status_code == 302 and "code" in query(allowed.headers["Location"])
    apps = client.get("/account/apps").get_data(as_text=True)
    client.post("/account/apps", data={"csrf_token": csrf_from(apps), "client_id": "rp1"})
    assert [e.actor for e in events("consent.granted")] == ["pupil0001"]
    assert [e.actor for e in events("consent.revoked")] == ["pupil0001"]
    assert [e.actor for e in events("login.success")] == ["pupil0001"]
