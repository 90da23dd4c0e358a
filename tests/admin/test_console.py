"""The operator console's app, key and audit pages, driven through their forms (issue 2 item 9, R-O3, R-N3)."""

from __future__ import annotations

import re

import sqlalchemy as sa
from admin_helpers import APP_FORM, client_credentials, post_form, sign_in

from idp.extensions import db
from idp.oidc.models import Client


def _secret(html: str) -> str:
    match = re.search(r'id="client-secret">([^<]+)<', html)
    assert match, "no secret on the page"
    return match.group(1)


def test_anonymous_is_sent_to_login_and_a_non_operator_is_refused(app, client, pupil) -> None:
    """R-O3: the console needs a signed-in operator: anonymous → login page, others → 403."""
    resp = client.get("/admin/clients")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?next=%2Fadmin%2Fclients")
    sign_in(client, "pupil1")
    for path in ("/admin/", "/admin/clients", "/admin/keys", "/admin/audit", "/admin/people", "/admin/conflicts"):
        assert client.get(path).status_code == 403, path
    resp = client.post("/admin/clients/new", data=APP_FORM)
    assert resp.status_code in (400, 403)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 0


def test_register_an_app_shows_the_secret_once(app, console) -> None:
    """R-O3: registering through the form shows the secret on one no-store page, never again."""
    resp = post_form(console, "/admin/clients/new", APP_FORM)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    html = resp.get_data(as_text=True)
    secret = _secret(html)
    cid = re.search(r'id="client-id">([^<]+)<', html).group(1)
    assert client_credentials(console, cid, secret).status_code == 200
    for path in (f"/admin/clients/{cid}", "/admin/clients", f"/admin/clients/{cid}/edit", "/admin/audit"):
        page = console.get(path)
        assert page.status_code == 200 and secret not in page.get_data(as_text=True), path
    row = db.session.scalar(sa.select(Client).where(Client.client_id == cid))
    assert row.redirect_uris == ["https://app.example.edu.tw/callback", "http://127.0.0.1:8080/cb"]
    assert row.scope == "openid profile email"


def test_a_refused_registration_says_why_beside_the_field(app, console) -> None:
    """R-O3: an http redirect URI off loopback is refused with a message at that field; nothing is stored."""
    resp = post_form(console, "/admin/clients/new", {**APP_FORM, "redirect_uris": "http://app.example.edu.tw/cb"},
                     page="/admin/clients/new")
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "必須使用 https" in html and 'class="field-error"' in html
    assert "http://app.example.edu.tw/cb" in html  # the typed value is kept for correction
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 0


def test_a_post_without_csrf_token_changes_nothing(app, console) -> None:
    """R-N3: console forms need their CSRF token."""
    resp = console.post("/admin/clients/new", data=APP_FORM)
    assert resp.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 0


def test_edit_rotate_and_delete_through_the_pages(app, console) -> None:
    """R-O3: edit keeps the client ID, rotation shows a new secret once, delete stops the app."""
    html = post_form(console, "/admin/clients/new", APP_FORM, page="/admin/clients/new").get_data(as_text=True)
    cid, first = re.search(r'id="client-id">([^<]+)<', html).group(1), _secret(html)

    edit = post_form(console, f"/admin/clients/{cid}/edit", {**APP_FORM, "name": "新名稱",
                                                             "require_real_name": "y"})
    assert edit.status_code == 302
    page = console.get(f"/admin/clients/{cid}").get_data(as_text=True)
    assert "新名稱" in page and cid in page

    confirm = console.get(f"/admin/clients/{cid}/rotate-secret")
    assert confirm.status_code == 200
    rotated = post_form(console, f"/admin/clients/{cid}/rotate-secret", {})
    second = _secret(rotated.get_data(as_text=True))
    assert second != first and rotated.headers["Cache-Control"] == "no-store"
    assert client_credentials(console, cid, first).status_code == 401
    assert client_credentials(console, cid, second).status_code == 200

    gone = post_form(console, f"/admin/clients/{cid}/delete", {})
    assert gone.status_code == 302
    assert "撤銷 1 個權杖" in console.get("/admin/clients").get_data(as_text=True)
    assert console.get(f"/admin/clients/{cid}").status_code == 404
    assert client_credentials(console, cid, second).status_code == 401


def test_keys_page_rotates_and_the_jwks_publishes_both(app, console) -> None:
    """R-O1: rotating from the console puts a new active key in use; the old one stays published."""
    before = {k["kid"] for k in console.get("/oauth/jwks").get_json()["keys"]}
    html = console.get("/admin/keys").get_data(as_text=True)
    token = re.search(r'name="rotate-csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    resp = console.post("/admin/keys", data={"rotate-csrf_token": token, "rotate-alg": "RS256",
                                             "rotate-submit": "1"})
    assert resp.status_code == 302
    store = app.extensions["idp.keys"]
    new_kid = store.signing_key("RS256").kid
    after = {k["kid"] for k in console.get("/oauth/jwks").get_json()["keys"]}
    assert new_kid not in before and new_kid in after and before <= after
    assert f'data-kid="{new_kid}"' in console.get("/admin/keys").get_data(as_text=True)


def test_audit_trail_lists_and_filters_events(app, console) -> None:
    """R-N3: operators see the audit trail, newest first, filtered by event and client."""
    html = post_form(console, "/admin/clients/new", APP_FORM, page="/admin/clients/new").get_data(as_text=True)
    cid = re.search(r'id="client-id">([^<]+)<', html).group(1)
    page = console.get("/admin/audit").get_data(as_text=True)
    assert 'data-event="client.created"' in page and 'data-event="login.success"' in page
    only = console.get(f"/admin/audit?event=client.&client_id={cid}").get_data(as_text=True)
    assert 'data-event="client.created"' in only and 'data-event="login.success"' not in only
    assert console.get("/admin/audit?before=notanumber").status_code == 200
