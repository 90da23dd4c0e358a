"""Logging out after a county sign-in (R-L2, R-L4, issue 12 item 4): the county's session is ended through
its end-session endpoint when it has one; otherwise the page says it may still be open."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from federation_helpers import PUPIL_ID, county_person, county_round_trip
from helpers import PASSWORD, csrf_from, login

from idp.accounts import services as accounts
from idp.extensions import db
from idp.identity import services as identity

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oidc"))


@pytest.fixture
def wang(counties: Any) -> Any:
    person = county_person(PUPIL_ID, "王小明", "wangxm2016")
    account = accounts.create_account("student1", PASSWORD, name="王小明", kind="cloud")
    identity.link_account(person, account, actor="test")
    db.session.commit()
    return account


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _logout(client: Any) -> Any:
    page = client.get("/logout")
    return page, client.post("/logout", data={"csrf_token": csrf_from(page.get_data(as_text=True))})


def _signed_out(client: Any) -> bool:
    cookie = client.get_cookie("idp_sso", domain="localhost")
    return cookie is None or not cookie.value


def test_logout_goes_through_the_county_and_back(client, county, wang) -> None:
    """R-L2, R-L4: signing out of a county session ends ours, then the county's (its end-session endpoint with
    our ID token hint), and comes back to a page that says both are over."""
    county_round_trip(client, county)
    page, resp = _logout(client)
    assert county.issuer in page.headers["Content-Security-Policy"]  # the form may lead to the county
    assert resp.status_code == 302 and _signed_out(client)
    at_county = resp.headers["Location"]
    assert at_county.startswith(f"{county.issuer}/logout?")
    q = _query(at_county)
    assert q["post_logout_redirect_uri"] == "http://localhost/login/county/ntpc/logged-out"
    assert q["client_id"] == "edu-sso" and q["id_token_hint"].count(".") == 2
    back = requests.get(at_county, allow_redirects=False, timeout=5).headers["Location"]
    html = client.get(urlsplit(back).path, query_string=_query(back)).get_data(as_text=True)
    assert 'data-county-session="ended"' in html and "新北市" in html


def test_a_county_without_end_session_is_said_to_be_maybe_open(client, county, wang) -> None:
    """R-L2, R-L4: for a county without an end-session endpoint, the logout ends ours and says the county's
    session may still be open."""
    county.end_session = False
    county_round_trip(client, county)
    _page, resp = _logout(client)
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login/county/ntpc/signed-out?state=")
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'data-county-session="maybe-open"' in html and "新北市" in html
    assert _signed_out(client)


def test_rp_initiated_logout_passes_through_the_county_to_the_app(client, county, wang) -> None:
    """R-L2, R-L4: an app's RP-initiated logout of a county session ends the county's session too, then
    lands on the app's registered post-logout URI with its state."""
    from factories import ClientFactory
    from oidc_helpers import get_code, redeem

    rp = ClientFactory(client_id="rp-fed", skip_consent=True)
    county_round_trip(client, county)
    hint = redeem(client, rp, get_code(client, rp)).get_json()["id_token"]
    resp = client.get("/oauth/logout", query_string={"id_token_hint": hint, "state": "rp-state",
                                                     "post_logout_redirect_uri": "https://rp.example.org/bye"})
    assert resp.status_code == 302 and resp.headers["Location"].startswith(f"{county.issuer}/logout?")
    back = requests.get(resp.headers["Location"], allow_redirects=False, timeout=5).headers["Location"]
    final = client.get(urlsplit(back).path, query_string=_query(back))
    assert final.status_code == 302 and final.headers["Location"] == "https://rp.example.org/bye?state=rp-state"
    assert _signed_out(client)


def test_a_password_session_logs_out_as_before(client, counties, wang) -> None:
    """R-L4: a session that did not start at a county logs out without any detour."""
    assert login(client, "student1").status_code == 302
    page, resp = _logout(client)
    assert resp.status_code == 200 and "Location" not in resp.headers
    assert not re.search(r"form-action[^;]*127\.0\.0\.1", page.headers["Content-Security-Policy"])


def test_the_county_logout_return_without_a_known_state_is_a_plain_page(client, counties) -> None:
    """R-L4: the post-logout URI opened by itself (or twice) shows the signed-out page, never an error."""
    resp = client.get("/login/county/ntpc/logged-out?state=nonsense")
    assert resp.status_code == 200 and "新北市" in resp.get_data(as_text=True)
