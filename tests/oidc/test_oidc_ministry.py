"""Ministry-compatible paths behave like the standard ones (issue 2 item 7)."""

from __future__ import annotations

from oidc_helpers import get_code, redeem, sign_in


def test_ministry_paths_complete_a_sign_in(client, rp, account) -> None:
    """R-O1: an app hard-coding the ministry's paths signs in by changing only the host."""
    sign_in(client, account)
    flow = get_code(client, rp, path="/oidc/v1/azp")
    resp = redeem(client, rp, flow, path="/oidc/v1/token")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    tokens = resp.get_json()
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    info = client.get("/oidc/v1/userinfo", headers=bearer)
    assert info.status_code == 200
    profile = client.get("/moeresource/api/v1/oidc/profile", headers=bearer)
    assert profile.status_code == 200
    assert profile.get_json() == info.get_json() == client.get("/oauth/userinfo", headers=bearer).get_json()
    assert profile.get_json()["name"] == "王小明"
    assert client.get("/oidc/v1/jwksets").get_json() == client.get("/oauth/jwks").get_json()
    assert client.get("/moeresource/api/v1/oidc/profile").status_code == 401


def test_ministry_authorize_refuses_unknown_client_with_page(client) -> None:
    """R-O1: the ministry authorize path also refuses an unknown client on a page."""
    resp = client.get("/oidc/v1/azp", query_string={"client_id": "x", "response_type": "code",
                                                     "redirect_uri": "https://x.example/cb"})
    assert resp.status_code == 400 and "Location" not in resp.headers
