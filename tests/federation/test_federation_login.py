"""Signing in with a county account (R-L2, issue 12 items 2 and 3): the relying-party checks, the person
behind the county's subject, the account they get, and the pages when something is wrong."""

from __future__ import annotations

import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from federation_helpers import COUNTY_ONLY_ID, PUPIL_ID, county_person, county_round_trip
from helpers import PASSWORD
from joserfc import jwt

from idp.accounts import services as accounts
from idp.extensions import db, store
from idp.federation.models import FederatedLink
from idp.identity import assurance
from idp.identity import services as identity
from idp.security.models import AuditEvent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oidc"))


def _sso(client: Any) -> Any:
    from idp.login import sessions

    cookie = client.get_cookie("idp_sso", domain="localhost")
    if cookie is None:
        return None
    data = store().get_json(f"sso:{cookie.value}")
    return sessions.SsoSession(**data) if data else None


def _events(name: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)))


@pytest.fixture
def wang(counties: Any) -> Any:
    """王小明: listed by the county with the county account wangxm2016, with a cloud account of his own."""
    person = county_person(PUPIL_ID, "王小明", "wangxm2016")
    account = accounts.create_account("student1", PASSWORD, name="王小明", kind="cloud")
    identity.link_account(person, account, actor="test")
    db.session.commit()
    return account


@pytest.fixture
def lin(counties: Any, county: Any) -> Any:
    """林小華: listed by the county (linxh2016), no cloud account yet; she is the one signing in at the county."""
    county.user = "lin"
    return county_person(COUNTY_ONLY_ID, "林小華", "linxh2016")


# -- the login page ---------------------------------------------------------------------------------
def test_the_login_page_offers_only_the_configured_counties_by_name(client, counties) -> None:
    """R-L2: the county area lists exactly the configured counties by their directory name (新北市, 臺北市),
    each a link to its own sign-in that keeps where the sign-in was going."""
    html = client.get("/login?next=%2Faccount%2Fapps").get_data(as_text=True)
    section = re.search(r'<section id="county-login"[^>]*>(.*?)</section>', html, re.S).group(1)
    links = dict(re.findall(r'href="([^"]+)" data-county="[^"]+">([^<]+)</a>', section))
    assert {v.replace(" ", "") for v in links.values()} == {"新北市縣市帳號", "臺北市縣市帳號"}
    assert {re.sub(r"\?.*", "", u) for u in links} == {"/login/county/ntpc", "/login/county/tpe"}
    assert all("next=%2Faccount%2Fapps" in u for u in links)
    assert "臺中市" not in section


def test_a_county_that_is_not_configured_is_not_found(client, counties) -> None:
    """R-L2: only configured counties have a sign-in: any other name is a 404 page."""
    assert client.get("/login/county/khc").status_code == 404


# -- signing in -------------------------------------------------------------------------------------
def test_a_pupil_with_a_cloud_account_signs_in_at_the_county_and_gets_that_account(client, county, wang) -> None:
    """R-L2, R-A2: the county's answer is verified, its subject is linked to the person the county's records
    list with that account, and the person's own cloud account is signed in (real-name, amr fed)."""
    resp = county_round_trip(client, county, next_url="/account/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/account/"
    sso = _sso(client)
    assert sso is not None and sso.account_id == wang.id
    assert sso.amr == ["fed"] and sso.acr == assurance.ACR_CLOUD
    link = db.session.scalar(sa.select(FederatedLink))
    assert link.provider == "ntpc" and link.person_id == identity.person_for_account(wang.id).id
    assert "ntpc-sub-0001" not in link.subject_hash and len(link.subject_hash) == 64
    assert [e.data["county"] for e in _events("federation.linked")] == ["ntpc"]
    assert _events("login.success")[-1].data["method"] == "county"
    assert "王小明" in client.get("/account/").get_data(as_text=True)


def test_cloud_password_and_county_sign_in_land_on_the_same_account(client, county, wang) -> None:
    """R-L2, R-A2: one lifelong identity: the county login and the cloud-account login are one account."""
    from helpers import login

    assert login(client, "student1").status_code == 302
    by_password = _sso(client).account_id
    county_round_trip(client, county)
    assert _sso(client).account_id == by_password == wang.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FederatedLink)) == 1


def test_a_county_only_pupil_gets_an_account_on_the_first_county_sign_in(client, county, lin) -> None:
    """R-L2: a pupil without a cloud account gets one at the first county sign-in, without questions: named
    after the county and the county account, real-name (linked), no password; the next sign-in reuses it."""
    county_round_trip(client, county)
    account = accounts.get_account(_sso(client).account_id)
    assert account.username == "ntpc.linxh2016" and account.kind == "cloud" and account.password_hash is None
    assert identity.person_for_account(account.id).id == lin.id
    assert _sso(client).acr == assurance.ACR_CLOUD
    client.post("/logout", data={"csrf_token": _csrf(client, "/logout")})
    county_round_trip(client, county)
    assert _sso(client).account_id == account.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(accounts.Account)) == 1


def _csrf(client: Any, path: str) -> str:
    from helpers import csrf_from

    return csrf_from(client.get(path).get_data(as_text=True))


def test_a_taken_name_gets_a_number(client, county, lin) -> None:
    """R-L2: the derived account name follows the account-name rule and is never one already taken."""
    accounts.create_account("ntpc.linxh2016", PASSWORD, kind="member")
    db.session.commit()
    county_round_trip(client, county)
    assert accounts.get_account(_sso(client).account_id).username == "ntpc.linxh2016-2"


def test_derived_names_follow_the_account_name_rule() -> None:
    """R-L2: county + account, lower-case, other characters as '-', at most 30, at least 6 characters."""
    from idp.federation.services import derived_username

    assert derived_username("ntpc", "LinXH2016") == "ntpc.linxh2016"
    assert derived_username("ntpc", "林 小華@school") == "ntpc.school"
    assert derived_username("tp", "a") == "tp.a00"
    assert len(derived_username("ntpc", "x" * 50)) == 30
    for name in ("ntpc.linxh2016", "ntpc.school", "tp.a00"):
        assert accounts.USERNAME_RE.fullmatch(name)


def test_the_id_token_our_apps_receive_says_the_sign_in_was_federated(client, county, wang) -> None:
    """R-L2, R-O1: after a county sign-in, a relying party's ID token carries amr ["fed"] and the cloud acr."""
    from factories import ClientFactory
    from oidc_helpers import get_code, redeem

    rp = ClientFactory(client_id="rp-fed", skip_consent=True)
    county_round_trip(client, county)
    flow = get_code(client, rp)
    body = redeem(client, rp, flow).get_json()
    claims = jwt.decode(body["id_token"], _our_keys()).claims
    assert claims["amr"] == ["fed"] and claims["acr"] == assurance.ACR_CLOUD


def _our_keys() -> Any:
    from flask import current_app

    return current_app.extensions["idp.keys"].verification_keyset()


def test_the_match_claim_can_come_from_the_id_token_itself(client, county, wang) -> None:
    """R-L2: a county that puts the match claim in the ID token needs no userinfo call."""
    county.id_token_claims.add("preferred_username")
    county_round_trip(client, county)
    assert _sso(client).account_id == wang.id
    assert "/userinfo" not in county.requests


def test_a_rotated_county_key_is_fetched_and_accepted(client, county, wang) -> None:
    """R-L2: the county's keys are cached; a token signed with a key the county rotated in since is accepted
    after fetching its key set again."""
    county_round_trip(client, county)
    county.rotate()
    county.requests.clear()
    county_round_trip(client, county)
    assert _sso(client).account_id == wang.id
    assert county.requests.count("/jwks") == 1


# -- the relying-party checks -------------------------------------------------------------------------
def _refused(resp: Any, status: int = 400) -> str:
    html = resp.get_data(as_text=True)
    assert resp.status_code == status, html[:800]
    assert "新北市" in html
    assert 'href="/login"' in html and "data-cloud-login" in html
    assert "/account/recover/account" in html
    return html


def test_a_tampered_state_is_refused(client, county, wang) -> None:
    """R-L2: the callback's state must be the one this browser started with: changed, it is refused."""
    resp = county_round_trip(client, county, edit=lambda q: q.update(state=q["state"][:-2] + "xx"))
    _refused(resp)
    assert _sso(client) is None
    assert _events("federation.refused")[-1].data["reason"] == "state"


def test_an_answer_meant_for_another_browser_is_refused(app, client, county, wang) -> None:
    """R-L2: state is bound to the browser that started: the county's answer replayed in another browser
    (login CSRF) signs nobody in."""
    captured: dict[str, str] = {}
    county_round_trip(client, county, edit=lambda q: (captured.update(q), q.update(state="gone")))
    other = app.test_client()
    _refused(other.get("/login/county/ntpc/callback", query_string=captured))
    assert _sso(other) is None


def test_an_answer_is_used_once(client, county, wang) -> None:
    """R-L2: the same callback URL a second time is refused (state used up)."""
    captured: dict[str, str] = {}
    county_round_trip(client, county, edit=captured.update)
    _refused(client.get("/login/county/ntpc/callback", query_string=captured))


@pytest.mark.parametrize(("tamper", "reason"), [
    ({"nonce": "another-nonce"}, "id_token: nonce does not match"),
    ({"iss": "https://evil.example.org"}, "id_token: from another issuer"),
    ({"aud": "another-client"}, "id_token: for another audience"),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000}, "id_token: expired"),
    ({"foreign_key": True}, "id_token: bad signature"),
    ({"iat": int(time.time()) - 3600}, "id_token: issued too long ago"),
    ({"userinfo_sub": "someone-else"}, "userinfo: about another subject"),
])
def test_an_id_token_that_does_not_verify_is_refused(client, county, wang, tamper, reason) -> None:
    """R-L2: nonce, issuer, audience, expiry, signature (and userinfo's subject) are checked: a token that
    fails one is refused with the county's page, nobody is signed in, and operators see the reason."""
    from idp.federation import services

    county.tamper.update(tamper)
    _refused(county_round_trip(client, county))
    assert _sso(client) is None
    assert _events("federation.refused")[-1].data["reason"] == reason
    assert store().get_json("fed:status:ntpc")["last_error"] == reason
    assert services.states()[0].last_error == reason


def test_a_county_error_answer_gives_the_page(client, county, wang) -> None:
    """R-L2: the county answering an error (the person cancelled) gives the county's page, not a 500."""
    html = _refused(county_round_trip(client, county, edit=lambda q: (q.pop("code"), q.update(error="access_denied"))))
    assert "cancelled" in html or "取消" in html


def test_a_discovery_document_for_another_issuer_counts_as_down(client, county, wang) -> None:
    """R-L2: the county's discovery must name the configured issuer (Discovery §4.3), else it is not used."""
    county.tamper["discovery_issuer"] = "https://evil.example.org"
    resp = client.get("/login/county/ntpc")
    assert resp.status_code == 503 and "新北市" in resp.get_data(as_text=True)


def test_a_county_that_is_down_gives_its_page(client, counties) -> None:
    """R-L2: a county whose provider cannot be reached gives a page naming that county and offering the
    cloud-account sign-in; never a 500; the console sees it unreachable."""
    resp = client.get("/login/county/tpe?next=%2Faccount%2F")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert "臺北市" in html and 'href="/login?next=/account/"' in html and "/account/recover/account" in html
    assert store().get_json("fed:status:tpe")["reachable"] is False


def test_a_county_that_does_not_answer_times_out_into_its_page(app, client, counties) -> None:
    """R-L2: a county that accepts the connection and never answers is given up after federation_timeout."""
    from idp.federation.client import Federation
    from idp.federation.config import CountyProvider

    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        provider = CountyProvider("tpe", "63", f"http://127.0.0.1:{hung.getsockname()[1]}", "edu-sso", "X",
                                  client_secret="s")
        app.extensions["idp.federation"] = Federation([provider], our_issuer="http://localhost", timeout=0.5,
                                                      metadata_ttl=60)
        started = time.monotonic()
        resp = client.get("/login/county/tpe")
        assert time.monotonic() - started < 3
    assert resp.status_code == 503 and "臺北市" in resp.get_data(as_text=True)
    assert store().get_json("fed:status:tpe")["last_error"] == "discovery: timed out"


# -- who may sign in ---------------------------------------------------------------------------------
def test_a_county_account_the_county_does_not_list_is_refused(client, county, wang) -> None:
    """R-L2: a county subject whose account no county record lists gets the refusal page (403) pointing to
    the cloud-account sign-in and 忘記帳號."""
    county.user = "stranger"
    _refused(county_round_trip(client, county), 403)
    assert _sso(client) is None and db.session.scalar(sa.select(FederatedLink)) is None


def test_a_pupil_who_left_the_county_school_is_refused(client, county, wang) -> None:
    """R-L2: once the county's source reports the pupil left (離校), the county login is refused, although the
    link exists and the county still signs them in."""
    county_round_trip(client, county)
    client.post("/logout", data={"csrf_token": _csrf(client, "/logout")})
    county_person(PUPIL_ID, "王小明", "wangxm2016", active=False)
    html = _refused(county_round_trip(client, county), 403)
    assert "資訊組長" in html
    assert _sso(client) is None
    assert _events("federation.refused")[-1].data["reason"] == "not_enrolled"


def test_an_affiliation_in_another_county_does_not_count(client, county, counties) -> None:
    """R-L2: the active affiliation must be at a school of the county signed in with."""
    county_person(PUPIL_ID, "王小明", "wangxm2016", school="633601")
    _refused(county_round_trip(client, county), 403)


def test_a_reissued_county_account_moves_the_link_and_is_audited(client, county, wang) -> None:
    """R-L2: when the county's records give the account to another pupil, the subject's link follows them
    (the records are the trusted source), audited as federation.relinked."""
    county_round_trip(client, county)
    client.post("/logout", data={"csrf_token": _csrf(client, "/logout")})
    old = identity.person_for_account(wang.id)
    county_person(PUPIL_ID, "王小明", None)  # the county no longer sends the account with him
    other = county_person(COUNTY_ONLY_ID, "林小華", "wangxm2016")
    county_round_trip(client, county)
    link = db.session.scalar(sa.select(FederatedLink))
    assert link.person_id == other.id != old.id
    (event,) = _events("federation.relinked")
    assert event.data["was_person_id"] == old.id and event.data["person_id"] == other.id
    assert _sso(client).account_id != wang.id


def test_a_disabled_account_is_not_signed_in_through_the_county(client, county, wang) -> None:
    """R-L2, R-C5: the county sign-in does not get round a disabled account: its page points to activation."""
    accounts.disable(wang, reason="operator", actor="op")
    db.session.commit()
    html = _refused(county_round_trip(client, county), 403)
    assert "/account/recover/activate" in html
    assert _sso(client) is None
