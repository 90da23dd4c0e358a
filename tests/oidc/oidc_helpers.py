"""Helpers for the OIDC tests: sign a test browser in, PKCE, run the code flow."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from factories import CLIENT_SECRET
from helpers import csrf_from, sign_in  # noqa: F401 - re-exported for the OIDC tests

from idp.oidc.models import Client

REDIRECT = "https://rp.example.org/callback"
PUBLIC_REDIRECT = "http://127.0.0.1:8765/cb"
SECRET = CLIENT_SECRET


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Flow:
    code: str
    verifier: str | None
    nonce: str
    params: dict[str, str]


def authorize_params(client: Client, **extra: Any) -> tuple[dict[str, str], str]:
    verifier, challenge = pkce()
    params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uris[0],
              "scope": "openid profile email", "state": secrets.token_urlsafe(8),
              "nonce": secrets.token_urlsafe(8), "code_challenge": challenge, "code_challenge_method": "S256"}
    params.update({k: v for k, v in extra.items() if v is not None})
    for k in [k for k, v in extra.items() if v is None]:
        params.pop(k, None)
    return params, verifier


def get_code(browser, client: Client, *, path: str = "/oauth/authorize", consent: bool = True,
             **extra: Any) -> Flow:
    """Run the authorization request as a signed-in person, consenting if asked; return the code."""
    params, verifier = authorize_params(client, **extra)
    resp = browser.get(path, query_string=params)
    if resp.status_code == 200 and consent:
        token = csrf_from(resp.get_data(as_text=True))
        resp = browser.post("/oauth/authorize", query_string=params, data={"csrf_token": token, "allow": "y"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    got = query(resp.headers["Location"])
    assert "code" in got, got
    assert got["state"] == params["state"]
    return Flow(got["code"], verifier if "code_challenge" in params else None, params.get("nonce", ""), params)


csrf_token_from = csrf_from


def redeem(browser, client: Client, flow: Flow, *, secret: str | None = SECRET, path: str = "/oauth/token",
           **extra: Any):
    data = {"grant_type": "authorization_code", "code": flow.code, "redirect_uri": client.redirect_uris[0]}
    if flow.verifier:
        data["code_verifier"] = flow.verifier
    data.update(extra)
    headers = {}
    if secret:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    else:
        data["client_id"] = client.client_id
    return browser.post(path, data=data, headers=headers)


def basic(client_id: str, secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def now() -> int:
    return int(time.time())
