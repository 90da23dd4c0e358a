"""The demo app shows what the provider sent in a form a developer reads (issue 10 item 14): claims as
JSON, not Python reprs; times as local dates, not bare Unix seconds."""

from __future__ import annotations

import json
import re

from clients.demo_rp.app import create_app

CLAIMS = {"iss": "http://127.0.0.1:5000", "sub": "abc", "aud": "demo-rp", "iat": 1796179672, "exp": 1796180572,
          "auth_time": 1796179660, "acr": "urn:tw:edu:sso:acr:cloud", "amr": ["pwd"], "email_verified": True}


def test_demo_app_shows_claims_as_json_and_times_as_local_dates() -> None:
    """R-O1: the demo app's signed-in page shows the ID token claims and userinfo as JSON (true, not True;
    ["pwd"], not ['pwd']) and iat/exp/auth_time and the token's expiry as Taipei dates."""
    app = create_app({"DEMO_RP_CLIENT_SECRET": "s" * 32, "DEMO_RP_ENV_FILE": "/nonexistent"})
    store = app.extensions["demo_rp.sessions"]
    sid = store.new({"token": {"expires_at": 1796180572, "scope": "openid"}, "id_claims": CLAIMS,
                     "userinfo": {"sub": "abc", "name": "王小明", "email_verified": True}, "eduinfo": None,
                     "refreshed": 0})
    client = app.test_client()
    with client.session_transaction() as session:
        session["sid"] = sid
    html = client.get("/").get_data(as_text=True)
    claims = re.search(r'<pre id="id-claims">(.*?)</pre>', html, re.S).group(1).replace("&#34;", '"')
    assert json.loads(claims) == CLAIMS and "True" not in claims and "['pwd']" not in claims
    assert "王小明" in re.search(r'<pre id="userinfo">(.*?)</pre>', html, re.S).group(1)
    # 1796179672 = 2026-12-02 02:47:52 UTC = 10:47:52 in Taipei
    assert "2026-12-02 10:47:52" in html and '<span id="expires-at">2026-12-02 11:02:52</span>' in html
    assert "Asia/Taipei" in html
