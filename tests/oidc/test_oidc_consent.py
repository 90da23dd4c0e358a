"""Consent page, remembered consent, the authorised-apps page, the real-name requirement (R-L4, R-A3)."""

from __future__ import annotations

from oidc_helpers import authorize_params, csrf_token_from, get_code, query, redeem, sign_in

from idp.extensions import db
from idp.oidc.models import Consent
from idp.security.models import AuditEvent


def test_consent_page_shows_app_and_scopes_in_words(client, rp, account) -> None:
    """R-L4: the consent page names the app and describes each requested scope in words (zh-TW first)."""
    sign_in(client, account)
    params, _ = authorize_params(rp, scope="openid profile email")
    resp = client.get("/oauth/authorize", query_string=params)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert rp.name in html
    assert 'data-scope="profile"' in html and 'data-scope="email"' in html
    assert 'name="csrf_token"' in html
    en = client.get("/oauth/authorize", query_string={**params, "ui_locales": "en"}).get_data(as_text=True)
    assert "Your e-mail address" in en


def test_consent_is_remembered_and_asked_again_for_new_scopes(client, rp, account) -> None:
    """R-L4: after consenting, the same scopes skip the page; a new scope asks again."""
    sign_in(client, account)
    get_code(client, rp, scope="openid profile")
    params, _ = authorize_params(rp, scope="openid profile")
    resp = client.get("/oauth/authorize", query_string=params)
    assert resp.status_code == 302 and "code" in query(resp.headers["Location"])
    params, _ = authorize_params(rp, scope="openid profile phone")
    resp = client.get("/oauth/authorize", query_string=params)
    assert resp.status_code == 200 and 'data-scope="phone"' in resp.get_data(as_text=True)
    params, _ = authorize_params(rp, scope="openid profile", prompt="consent")
    assert client.get("/oauth/authorize", query_string=params).status_code == 200


def test_consent_denied_returns_access_denied(client, rp, account) -> None:
    """R-L4: pressing cancel sends access_denied (with state and iss) to the app."""
    sign_in(client, account)
    params, _ = authorize_params(rp)
    page = client.get("/oauth/authorize", query_string=params)
    resp = client.post("/oauth/authorize", query_string=params,
                       data={"csrf_token": csrf_token_from(page.get_data(as_text=True)), "deny": "y"})
    got = query(resp.headers["Location"])
    assert got["error"] == "access_denied" and got["state"] == params["state"] and got["iss"]
    assert db.session.execute(db.select(Consent)).scalars().first() is None


def test_consent_form_needs_csrf_token(client, rp, account) -> None:
    """R-N3: the consent form without its CSRF token is refused and grants nothing."""
    sign_in(client, account)
    params, _ = authorize_params(rp)
    resp = client.post("/oauth/authorize", query_string=params, data={"allow": "y"})
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_skip_consent_client(client, make_client, account) -> None:
    """R-L4: a client the operator marked skip_consent gets a code without the consent page."""
    rp = make_client("trusted", skip_consent=True)
    sign_in(client, account)
    resp = client.get("/oauth/authorize", query_string=authorize_params(rp)[0])
    assert resp.status_code == 302 and "code" in query(resp.headers["Location"])


def test_apps_page_lists_and_revokes(client, rp, account) -> None:
    """R-L4: the person sees the apps they allowed and removing one revokes its tokens."""
    sign_in(client, account)
    tokens = redeem(client, rp, get_code(client, rp)).get_json()
    page = client.get("/account/apps")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and rp.name in html and f'data-client="{rp.client_id}"' in html
    resp = client.post("/account/apps", data={"csrf_token": csrf_token_from(html), "client_id": rp.client_id})
    assert resp.status_code == 302
    assert rp.name not in client.get("/account/apps").get_data(as_text=True)
    assert client.get("/oauth/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}
                      ).status_code == 401
    assert db.session.execute(db.select(AuditEvent).filter_by(event="consent.revoked")).scalars().first()
    # Next sign-in asks again.
    assert client.get("/oauth/authorize", query_string=authorize_params(rp)[0]).status_code == 200


def test_apps_page_needs_sign_in(client) -> None:
    """R-L4: the authorised-apps page sends a stranger to the login page."""
    resp = client.get("/account/apps")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_real_name_required_refuses_members_with_a_page(client, make_client, make_account) -> None:
    """R-A3: a member signing in to a real-name app gets a clear page, not a redirect."""
    rp = make_client("realname", require_real_name=True)
    member = make_account("member1", kind="member")
    sign_in(client, member)
    resp = client.get("/oauth/authorize", query_string=authorize_params(rp)[0])
    assert resp.status_code == 403 and "Location" not in resp.headers
    assert 'data-error="real_name_required"' in resp.get_data(as_text=True)


def test_acr_values_asks_for_real_name(client, rp, make_account, account, link_person) -> None:
    """R-A3: acr_values with the cloud acr refuses members; a cloud account gets that acr."""
    link_person(account, "A123456789")
    member = make_account("member2", kind="member")
    sign_in(client, member)
    params, _ = authorize_params(rp, acr_values="urn:tw:edu:sso:acr:cloud")
    assert client.get("/oauth/authorize", query_string=params).status_code == 403
    sign_in(client, account)
    flow = get_code(client, rp, acr_values="urn:tw:edu:sso:acr:cloud")
    assert redeem(client, rp, flow).status_code == 200
