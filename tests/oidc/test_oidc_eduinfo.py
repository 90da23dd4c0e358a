"""Education claims: the eduinfo scope and endpoint, the guid scope, real-name gating (issue 3 item 7, R-O2, R-A3)."""

from __future__ import annotations

import hashlib
import json

from oidc_helpers import authorize_params, get_code, redeem, sign_in

from idp.extensions import db
from idp.identity.nationalid import check_digit
from idp.sources.base import AffiliationRecord

PUPIL_ID = "A123456789"
TEACHER_ID = "B22345678" + check_digit("B22345678")
PUPIL = AffiliationRecord("014601", "學生", grade=3, class_no="05", class_name="三年五班", academic_year=114,
                          semester=1)
FORMER = AffiliationRecord("013601", "學生", grade=2, class_no="01", class_name="二年一班", academic_year=113,
                           semester=2, active=False)


def _tokens(client, rp, scope: str, **extra) -> dict:
    flow = get_code(client, rp, scope=scope, **extra)
    resp = redeem(client, rp, flow)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def _bearer(tokens: dict) -> dict:
    return {"Authorization": "Bearer " + tokens["access_token"]}


def test_eduinfo_claim_and_ministry_endpoint_have_the_ministry_shape(client, make_client, account,
                                                                     link_person) -> None:
    """R-O2: eduinfo in userinfo and at the ministry path: sub, schoolid, titles, classinfo (students)."""
    rp = make_client(scope="openid profile eduinfo")
    link_person(account, PUPIL_ID, PUPIL, FORMER)
    sign_in(client, account)
    tokens = _tokens(client, rp, "openid profile eduinfo")
    info = client.get("/oauth/userinfo", headers=_bearer(tokens)).get_json()
    expected = {"schoolid": "014601", "titles": [{"schoolid": "014601", "titles": ["學生"]}],
                "classinfo": [{"year": "114", "semester": "1", "schoolid": "014601", "grade": "3", "classno": "05",
                               "classtitle": "三年五班"}]}
    assert {k: info[k] for k in expected} == expected
    resource = client.get("/moeresource/api/v1/oidc/eduinfo", headers=_bearer(tokens))
    assert resource.status_code == 200 and resource.headers["Cache-Control"] == "no-store"
    assert resource.get_json() == {"sub": info["sub"], **expected}
    assert PUPIL_ID not in json.dumps(info) + resource.get_data(as_text=True)


def test_teacher_has_titles_and_no_classinfo(client, make_client, make_account, link_person) -> None:
    """R-O2, R-O4: a teacher's titles list role and title per school; classinfo is an empty list (apps index it)."""
    rp = make_client(scope="openid eduinfo")
    teacher = make_account("teacher1")
    link_person(teacher, TEACHER_ID, AffiliationRecord("633401", "教師", title="校長"), name="陳美玲",
                source="webhr")
    sign_in(client, teacher)
    body = client.get("/moeresource/api/v1/oidc/eduinfo", headers=_bearer(_tokens(client, rp, "openid eduinfo")))
    data = body.get_json()
    assert data["schoolid"] == "633401" and data["titles"] == [{"schoolid": "633401", "titles": ["教師", "校長"]}]
    assert data["classinfo"] == []


def test_eduinfo_endpoint_needs_a_token_with_the_scope(client, make_client, account, link_person) -> None:
    """R-O2: no token → 401 with WWW-Authenticate; a token without eduinfo → 403 insufficient_scope."""
    rp = make_client(scope="openid profile eduinfo")
    link_person(account, PUPIL_ID, PUPIL)
    missing = client.get("/moeresource/api/v1/oidc/eduinfo")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].lower().startswith("bearer")
    sign_in(client, account)
    narrow = _tokens(client, rp, "openid profile")
    refused = client.get("/moeresource/api/v1/oidc/eduinfo", headers=_bearer(narrow))
    assert refused.status_code == 403 and refused.get_json()["error"] == "insufficient_scope"
    assert "schoolid" not in client.get("/oauth/userinfo", headers=_bearer(narrow)).get_json()


def test_guid_is_keyed_pairwise_and_follows_the_person(client, make_client, make_account, account,
                                                       link_person) -> None:
    """R-O2: guid is not the bare SHA-256 of the ID, differs per sector, and stays with the person."""
    a = make_client("rp-a", scope="openid guid", redirect_uris=["https://a.example.org/cb"])
    b = make_client("rp-b", scope="openid guid", redirect_uris=["https://b.example.org/cb"])
    person = link_person(account, PUPIL_ID, PUPIL)
    sign_in(client, account)
    guid_a = client.get("/oauth/userinfo", headers=_bearer(_tokens(client, a, "openid guid"))).get_json()["guid"]
    guid_b = client.get("/oauth/userinfo", headers=_bearer(_tokens(client, b, "openid guid"))).get_json()["guid"]
    assert guid_a != guid_b and len(guid_a) >= 43
    assert guid_a not in {hashlib.sha256(PUPIL_ID.encode()).hexdigest(), PUPIL_ID}
    # The person's account is replaced (e.g. re-applied after deletion): the app still finds its records.
    from idp.identity import services as identity

    newer = make_account("student2")
    identity.unlink_account(person, actor="operator1", reason="account deleted")
    identity.link_account(person, newer, actor="student2")
    db.session.commit()
    sign_in(client, newer)
    again = client.get("/oauth/userinfo", headers=_bearer(_tokens(client, a, "openid guid"))).get_json()
    assert again["guid"] == guid_a


def test_members_get_no_education_claims(client, make_client, make_account) -> None:
    """R-A1, R-O2: a member (no person behind the account) gets no eduinfo or guid claims."""
    rp = make_client(scope="openid eduinfo guid")
    member = make_account("member9", kind="member")
    sign_in(client, member)
    tokens = _tokens(client, rp, "openid eduinfo guid")
    info = client.get("/oauth/userinfo", headers=_bearer(tokens)).get_json()
    assert set(info) == {"sub"}
    body = client.get("/moeresource/api/v1/oidc/eduinfo", headers=_bearer(tokens)).get_json()
    assert body == {"sub": info["sub"], "schoolid": "", "titles": [], "classinfo": []}


def test_real_name_needs_a_resolved_identity(client, make_client, account, link_person) -> None:
    """R-A3: an app requiring real names refuses a cloud account with no person behind it, then accepts it."""
    rp = make_client("realname2", require_real_name=True)
    sign_in(client, account)
    refused = client.get("/oauth/authorize", query_string=authorize_params(rp)[0])
    assert refused.status_code == 403 and 'data-error="real_name_required"' in refused.get_data(as_text=True)
    link_person(account, PUPIL_ID, PUPIL)
    sign_in(client, account)  # the level is decided at sign-in: the next sign-in reaches it
    assert redeem(client, rp, get_code(client, rp)).status_code == 200


def test_discovery_advertises_the_education_scopes_and_claims(client) -> None:
    """R-O2: discovery lists eduinfo and guid with their claims."""
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert {"eduinfo", "guid"} <= set(doc["scopes_supported"])
    assert {"schoolid", "titles", "classinfo", "guid"} <= set(doc["claims_supported"])
