"""Helpers for the operator console tests (a uniquely named module, like ``login_helpers``)."""

from __future__ import annotations

import base64
import re

from flask.testing import FlaskClient

OPERATOR_PASSWORD = "Operator-Pass-2026"


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str = OPERATOR_PASSWORD) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": username, "password": password, "next": "/",
                                       "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)


def post_form(client: FlaskClient, path: str, data: dict, page: str | None = None):
    """GET the page (for its CSRF token) then POST the form as a browser would."""
    token = csrf_from(client.get(page or path).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def client_credentials(client: FlaskClient, client_id: str, secret: str):
    auth = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post("/oauth/token", data={"grant_type": "client_credentials"},
                       headers={"Authorization": f"Basic {auth}"})


APP_FORM = {
    "name": "校務系統 School App",
    "redirect_uris": "https://app.example.edu.tw/callback\nhttp://127.0.0.1:8080/cb",
    "post_logout_redirect_uris": "https://app.example.edu.tw/bye",
    "backchannel_logout_uri": "",
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "scope": ["openid", "profile", "email"],
    "token_endpoint_auth_method": "client_secret_basic",
    "jwks": "",
    "jwks_uri": "",
    "id_token_signed_response_alg": "RS256",
    "subject_type": "pairwise",
    "sector_identifier": "",
}
