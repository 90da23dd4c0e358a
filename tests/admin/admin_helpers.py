"""Helpers for the operator console tests: the console's sign-in, an app form, client credentials."""

from __future__ import annotations

import base64

from flask.testing import FlaskClient
from helpers import csrf_from, post_form  # noqa: F401 - re-exported for the admin tests
from helpers import login as _login

OPERATOR_PASSWORD = "Operator-Pass-2026"


def sign_in(client: FlaskClient, username: str, password: str = OPERATOR_PASSWORD) -> None:
    resp = _login(client, username, password)
    assert resp.status_code == 302, resp.get_data(as_text=True)


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
