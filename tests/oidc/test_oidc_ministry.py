"""Apps written for the ministry's service move over by changing only the host (R-O4, issue 11; issue 2 item 7).

Each test reproduces what a real relying party does (docs/development/ministry-research.md): a museum's
member system (fixed ``nonce=1``, Basic at ``/oidc/v1/token``, ``/moeresource/api/v1/oidc/userinfo``, a .NET
``Guid`` subject, ``classinfo`` indexed, ``Id_token_hint`` logout), the ministry's PHP sample (``keys[0]``,
Basic) and Java sample (secret in the body, ``open2_id`` from the ID token), a school-site module
(``preferred_username`` from the ID token, gzip eduinfo without asking for it), a cloud-storage app (the
profile resource's shape).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from oidc_helpers import SECRET, authorize_params, csrf_from, get_code, redeem, sign_in

from idp.identity.nationalid import check_digit
from idp.sources.base import AffiliationRecord

PUPIL_ID = "A123456789"
TEACHER_ID = "B22345678" + check_digit("B22345678")
PUPIL = AffiliationRecord("014601", "學生", grade=3, class_no="05", class_name="三年五班", academic_year=114,
                          semester=1)
TEACHER = AffiliationRecord("633401", "教師", title="校長")
MINISTRY_SCOPE = "openid profile email eduinfo openid2 educloudroles personid guid"


def _ministry_client(make_client, client_id: str = "moe-app", **fields):
    """An app registered as moving over from the ministry's service (what --ministry-compatible stores)."""
    fields = {"scope": MINISTRY_SCOPE, "ministry_compatible": True, "subject_format": "uuid", **fields}
    return make_client(client_id, **fields)


def _payload(jwt_text: str) -> dict:
    part = jwt_text.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _b64int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def _verify_like_the_php_sample(client, id_token: str) -> dict:
    """What the ministry's idtoken_verify.php does: n and e of keys[0] of /oidc/v1/jwksets, RS256, no kid."""
    first = client.get("/oidc/v1/jwksets").get_json()["keys"][0]
    key = rsa.RSAPublicNumbers(_b64int(first["e"]), _b64int(first["n"])).public_key()
    header, payload, signature = id_token.split(".")
    key.verify(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)), f"{header}.{payload}".encode(),
               padding.PKCS1v15(), hashes.SHA256())
    return _payload(id_token)


def _sign_in_at_ministry_paths(browser, rp, scope: str, **extra) -> dict:
    flow = get_code(browser, rp, path="/oidc/v1/azp", scope=scope, **extra)
    resp = redeem(browser, rp, flow, path="/oidc/v1/token")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def _bearer(tokens: dict) -> dict:
    return {"Authorization": "Bearer " + tokens["access_token"]}


def test_ministry_paths_complete_a_sign_in(client, rp, account) -> None:
    """R-O1: an app hard-coding the ministry's paths signs in by changing only the host; userinfo answers at
    /oidc/v1/userinfo and /moeresource/api/v1/oidc/userinfo alike."""
    sign_in(client, account)
    tokens = _sign_in_at_ministry_paths(client, rp, "openid profile email")
    info = client.get("/oidc/v1/userinfo", headers=_bearer(tokens))
    assert info.status_code == 200 and info.get_json()["name"] == "王小明"
    assert info.get_json() == client.get("/oauth/userinfo", headers=_bearer(tokens)).get_json()
    assert info.get_json() == client.get("/moeresource/api/v1/oidc/userinfo", headers=_bearer(tokens)).get_json()
    assert client.get("/oidc/v1/jwksets").get_json() == client.get("/oauth/jwks").get_json()
    assert client.get("/moeresource/api/v1/oidc/profile").status_code == 401


def test_ministry_authorize_refuses_unknown_client_with_page(client) -> None:
    """R-O1: the ministry authorize path also refuses an unknown client on a page."""
    resp = client.get("/oidc/v1/azp", query_string={"client_id": "x", "response_type": "code",
                                                     "redirect_uri": "https://x.example/cb"})
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_a_fixed_nonce_signs_in_a_whole_classroom(app, client, make_client, make_account) -> None:
    """R-O4: an app sending nonce=1 for everyone (a museum's member system) signs in two pupils one after the
    other, and each ID token carries nonce 1; the same browser's session-kept nonce works twice too."""
    rp = _ministry_client(make_client)
    first, second = make_account("pupil1"), make_account("pupil2")
    sign_in(client, first)
    one = _sign_in_at_ministry_paths(client, rp, "educloudroles openid2 eduinfo email profile openid", nonce="1",
                                     state="2")
    other_browser = app.test_client()
    sign_in(other_browser, second)
    two = _sign_in_at_ministry_paths(other_browser, rp, "educloudroles openid2 eduinfo email profile openid",
                                     nonce="1", state="2")
    again = _sign_in_at_ministry_paths(client, rp, "openid profile", nonce="1")
    claims = [_payload(t["id_token"]) for t in (one, two, again)]
    assert [c["nonce"] for c in claims] == ["1", "1", "1"]
    assert claims[0]["sub"] != claims[1]["sub"] and claims[0]["sub"] == claims[2]["sub"]


def test_id_token_has_the_profile_email_and_open2_id_claims(client, make_client, account) -> None:
    """R-O4: the ID token carries preferred_username, name, email and open2_id (a one-element list), as a
    school-site module and the ministry's Java sample read them; verified as the PHP sample does (keys[0])."""
    rp = _ministry_client(make_client)
    sign_in(client, account)
    tokens = _sign_in_at_ministry_paths(client, rp, "openid email profile openid2")
    claims = _verify_like_the_php_sample(client, tokens["id_token"])
    assert claims["preferred_username"] == "student1" and claims["name"] == "王小明"
    assert claims["email"] == "student1@example.edu.tw" and claims["email_verified"] is True
    assert isinstance(claims["open2_id"], list) and len(claims["open2_id"]) == 1
    assert claims["open2_id"][0].startswith("http://localhost/openid2/")
    assert "phone_number" not in claims and "schoolid" not in claims  # only profile, e-mail and open2_id
    narrow = _payload(_sign_in_at_ministry_paths(client, rp, "openid")["id_token"])
    assert not {"preferred_username", "email", "open2_id"} & set(narrow)  # only what was granted


def test_keys0_of_jwksets_is_the_rsa_id_token_key_after_a_rotation(app, client, rp, account) -> None:
    """R-O4: keys[0] of /oidc/v1/jwksets is the RSA key that signs ID tokens, even when an ES256 key is newer."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["keys", "rotate", "--alg", "ES256"]).exit_code == 0
    sign_in(client, account)
    tokens = _sign_in_at_ministry_paths(client, rp, "openid")
    first = client.get("/oidc/v1/jwksets").get_json()["keys"][0]
    header = json.loads(base64.urlsafe_b64decode(tokens["id_token"].split(".")[0] + "=="))
    assert first["kty"] == "RSA" and first["kid"] == header["kid"]
    assert _verify_like_the_php_sample(client, tokens["id_token"])["aud"] == [rp.client_id]


def test_a_secret_works_in_the_header_or_in_the_body(client, make_client, account) -> None:
    """R-O4: the PHP sample's HTTP Basic and the Java sample's secret in the body both redeem a code, whichever
    of the two the app was registered with; a refresh may use the other one; both at once is still refused."""
    basic_rp = make_client("basic-app")
    post_rp = make_client("post-app", token_endpoint_auth_method="client_secret_post")
    sign_in(client, account)
    # The Java sample (Nimbus ClientSecretPost): client_id and client_secret in the form.
    flow = get_code(client, basic_rp, path="/oidc/v1/azp", code_challenge=None, code_challenge_method=None)
    body = redeem(client, basic_rp, flow, path="/oidc/v1/token", secret=None, client_secret=SECRET)
    assert body.status_code == 200, body.get_data(as_text=True)
    refreshed = client.post("/oidc/v1/token", data={"grant_type": "refresh_token", "client_id": basic_rp.client_id,
                                                    "client_secret": SECRET,
                                                    "refresh_token": body.get_json()["refresh_token"]})
    assert refreshed.status_code == 200
    # The PHP sample: Authorization: Basic, nothing else in the body.
    flow = get_code(client, post_rp, path="/oidc/v1/azp", code_challenge=None, code_challenge_method=None)
    assert redeem(client, post_rp, flow, path="/oidc/v1/token").status_code == 200
    flow = get_code(client, post_rp, path="/oidc/v1/azp", code_challenge=None, code_challenge_method=None)
    both = redeem(client, post_rp, flow, path="/oidc/v1/token", client_secret=SECRET)
    assert both.status_code == 400 and both.get_json()["error"] == "invalid_request"
    wrong = redeem(client, post_rp, flow, path="/oidc/v1/token", secret=None, client_secret="wrong")
    assert wrong.status_code == 401


def test_eduinfo_is_gzip_when_accepted_and_plain_otherwise(client, make_client, make_account, link_person) -> None:
    """R-O4: eduinfo is gzip when the request accepts it (a school-site module sends no Accept-Encoding and
    gzdecodes), plain when it does not; classinfo is an empty list for a teacher (a museum indexes it)."""
    rp = _ministry_client(make_client)
    teacher = make_account("teacher1")
    link_person(teacher, TEACHER_ID, TEACHER, name="陳美玲", source="webhr")
    sign_in(client, teacher)
    tokens = _sign_in_at_ministry_paths(client, rp, "openid profile eduinfo")
    path = "/moeresource/api/v1/oidc/eduinfo"
    zipped = client.get(path, headers={**_bearer(tokens), "Accept-Encoding": "gzip, deflate"})
    assert zipped.status_code == 200 and zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    data = json.loads(gzip.decompress(zipped.get_data()))
    assert data["schoolid"] == "633401" and data["titles"] == [{"schoolid": "633401", "titles": ["教師", "校長"]}]
    assert data["classinfo"] == []
    uuid.UUID(data["sub"])  # a .NET Guid parses it
    unasked = client.get(path, headers=_bearer(tokens))  # PHP file_get_contents: no Accept-Encoding at all
    assert unasked.headers["Content-Encoding"] == "gzip" and json.loads(gzip.decompress(unasked.get_data())) == data
    for refusing in ("identity", "UTF-8", "gzip;q=0"):  # curl CURLOPT_ENCODING 'UTF-8' sends the latter kind
        plain = client.get(path, headers={**_bearer(tokens), "Accept-Encoding": refusing})
        assert "Content-Encoding" not in plain.headers and plain.get_json() == data, refusing


def test_eduinfo_without_asking_for_it(client, make_client, account, link_person) -> None:
    """R-O4: an app moving over, registered for eduinfo, asks only "openid email profile openid2" (as a
    school-site module does) and still reads eduinfo: the consent page names it and the token's scope says so;
    an app not moving over still gets 403 without the scope."""
    rp = _ministry_client(make_client)
    link_person(account, PUPIL_ID, PUPIL)
    sign_in(client, account)
    params, _ = authorize_params(rp, scope="openid email profile openid2")
    consent = client.get("/oidc/v1/azp", query_string=params).get_data(as_text=True)
    assert "您的學校、身分與班級" in consent  # the eduinfo row of the consent page
    tokens = _sign_in_at_ministry_paths(client, rp, "openid email profile openid2")
    assert "eduinfo" in tokens["scope"].split()
    resp = client.get("/moeresource/api/v1/oidc/eduinfo", headers={**_bearer(tokens), "Accept-Encoding": "gzip"})
    assert json.loads(gzip.decompress(resp.get_data()))["classinfo"][0]["classtitle"] == "三年五班"
    plain = make_client("plain-app", scope="openid profile email eduinfo")
    narrow = redeem(client, plain, get_code(client, plain, scope="openid email profile")).get_json()
    assert client.get("/moeresource/api/v1/oidc/eduinfo", headers=_bearer(narrow)).status_code == 403


def test_profile_resource_has_the_ministry_shape(client, make_client, make_account, link_person) -> None:
    """R-O4: /moeresource/api/v1/oidc/profile answers {"fullname", "guid", "titles": [{"schoolid", "title"}]}
    (title singular), as the cloud-storage app reads it."""
    rp = _ministry_client(make_client)
    teacher = make_account("teacher1", name="陳美玲")
    link_person(teacher, TEACHER_ID, TEACHER, name="陳美玲", source="webhr")
    sign_in(client, teacher)
    tokens = _sign_in_at_ministry_paths(client, rp, "openid profile guid eduinfo")
    profile = client.get("/moeresource/api/v1/oidc/profile", headers=_bearer(tokens))
    assert profile.status_code == 200 and profile.headers["Cache-Control"] == "no-store"
    body = profile.get_json()
    assert set(body) == {"fullname", "guid", "titles"}
    assert body["fullname"] == "陳美玲" and body["titles"] == [{"schoolid": "633401", "title": ["教師", "校長"]}]
    guid = client.get("/oauth/userinfo", headers=_bearer(tokens)).get_json()["guid"]
    assert body["guid"] == guid and TEACHER_ID not in profile.get_data(as_text=True)


def test_logout_with_the_ministry_spellings(client, make_client, account) -> None:
    """R-O4: /oidc/v1/userlogout?Id_token_hint=…&post_logout_redirect_url=… ends the session and returns to the
    app; /auth-logout (a bare link) asks the person to confirm."""
    rp = _ministry_client(make_client)
    sign_in(client, account)
    tokens = _sign_in_at_ministry_paths(client, rp, "openid profile")
    bare = client.get("/auth-logout", follow_redirects=True)
    assert bare.status_code == 200 and 'name="csrf_token"' in bare.get_data(as_text=True)  # the confirmation
    resp = client.get("/oidc/v1/userlogout", query_string={"Id_token_hint": tokens["id_token"],
                                                           "post_logout_redirect_url": "https://rp.example.org/bye"})
    assert resp.status_code == 302
    done = client.get(resp.headers["Location"])
    assert done.status_code == 302 and done.headers["Location"].startswith("https://rp.example.org/bye")
    assert client.get("/moeresource/api/v1/oidc/userinfo", headers=_bearer(tokens)).status_code == 401
    unregistered = client.get("/oidc/v1/userlogout", query_string={
        "Id_token_hint": tokens["id_token"], "post_logout_redirect_url": "https://evil.example/"},
        follow_redirects=True)
    assert "evil.example" not in (unregistered.headers.get("Location") or "")


def test_uuid_subjects_are_pairwise_and_stable(client, make_client, account, link_person) -> None:
    """R-O4: an app moving over sees a UUID sub (one parses it as a .NET Guid), the same in the ID token,
    userinfo and eduinfo and at every sign-in, and a different one in another sector."""
    a = _ministry_client(make_client, "moe-a", redirect_uris=["https://a.example.org/cb"])
    b = _ministry_client(make_client, "moe-b", redirect_uris=["https://b.example.org/cb"])
    link_person(account, PUPIL_ID, PUPIL)
    sign_in(client, account)
    ta = _sign_in_at_ministry_paths(client, a, "openid eduinfo")
    sub = _payload(ta["id_token"])["sub"]
    assert str(uuid.UUID(sub)) == sub
    assert client.get("/oidc/v1/userinfo", headers=_bearer(ta)).get_json()["sub"] == sub
    edu = client.get("/moeresource/api/v1/oidc/eduinfo", headers={**_bearer(ta), "Accept-Encoding": "identity"})
    assert edu.get_json()["sub"] == sub
    assert _payload(_sign_in_at_ministry_paths(client, a, "openid")["id_token"])["sub"] == sub
    other = _payload(_sign_in_at_ministry_paths(client, b, "openid")["id_token"])["sub"]
    assert other != sub and uuid.UUID(other)


def test_the_ministry_scopes_and_no_national_id(client, make_client, account, link_person) -> None:
    """R-O4, R-O2: openid2, educloudroles and personid are served; personid is a keyed value, never the ID or
    its bare SHA-256; an unknown scope is still ignored, not refused."""
    rp = _ministry_client(make_client)
    link_person(account, PUPIL_ID, PUPIL)
    sign_in(client, account)
    tokens = _sign_in_at_ministry_paths(client, rp, "openid profile openid2 educloudroles personid exchangedata")
    assert "exchangedata" not in tokens["scope"]
    info = client.get("/oidc/v1/userinfo", headers=_bearer(tokens)).get_json()
    assert info["educloudroles"] == ["學生"] and len(info["open2_id"]) == 1
    assert info["personid"] and len(info["personid"]) >= 43
    said = json.dumps(info) + json.dumps(_payload(tokens["id_token"]))
    for form in (PUPIL_ID, hashlib.sha256(PUPIL_ID.encode()).hexdigest(),
                 hashlib.sha256(PUPIL_ID.encode()).hexdigest().upper()):
        assert form not in said
    county = client.get("/cncresource/api/v1/personid", headers=_bearer(tokens)).get_json()
    assert county == {"sub": info["sub"], "personid": info["personid"]}
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert {"openid2", "educloudroles", "personid"} <= set(doc["scopes_supported"])


def test_other_hard_coded_paths(client, make_client, account, link_person) -> None:
    """R-O4: the v2 eduinfo and relation resources answer for everyone (relation empty: no source reports
    teaching assignments), and the museum's school look-up answers in the ministry's directory shape."""
    from idp.extensions import db
    from idp.schools import loaders
    from idp.schools.commands import SAMPLE

    loaders.load_file(SAMPLE.with_name("ministry_sample.json").read_text(encoding="utf-8"), "json")
    db.session.commit()
    rp = _ministry_client(make_client)
    link_person(account, PUPIL_ID, PUPIL)
    sign_in(client, account)
    tokens = _sign_in_at_ministry_paths(client, rp, "openid eduinfo")
    plain = {**_bearer(tokens), "Accept-Encoding": "identity"}
    v2 = client.get("/moeresource/api/v2/oidc/eduinfo", headers=plain).get_json()
    assert v2 == client.get("/moeresource/api/v1/oidc/eduinfo", headers=plain).get_json()
    assert client.get("/moeresource/api/v2/oidc/relation", headers=plain).get_json() == {"sub": v2["sub"],
                                                                                        "relation": []}
    school = client.get(f"/moeresource/api/v2/eduoid/all/eduid/{v2['schoolid']}").get_json()
    assert school[0]["schoolname"] and school[0]["county"].split("]")[1] == "新北市"
    assert client.get("/moeresource/api/v2/eduoid/all/eduid/999999").get_json() == []


def test_clients_create_ministry_compatible(app) -> None:
    """R-O4: `clients create --ministry-compatible` registers the ministry's scopes and UUID subjects."""
    result = app.test_cli_runner().invoke(args=[
        "clients", "create", "--name", "校務系統", "--redirect-uri", "https://school.example.edu.tw/cb",
        "--ministry-compatible", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["ministry_compatible"] is True and out["subject_format"] == "uuid"
    assert {"openid", "profile", "email", "eduinfo", "openid2", "educloudroles", "personid"} <= set(
        out["scope"].split())
    plain = json.loads(app.test_cli_runner().invoke(args=[
        "clients", "create", "--name", "新系統", "--redirect-uri", "https://new.example.edu.tw/cb", "--json"]).output)
    assert plain["ministry_compatible"] is False and plain["subject_format"] == "opaque"


def test_console_checkbox_registers_an_app_moving_over(app, client) -> None:
    """R-O4: the console's "moving over from the ministry's service" checkbox stores the same registration."""
    import sqlalchemy as sa
    from helpers import login

    from idp.accounts.services import create_account
    from idp.extensions import db
    from idp.oidc.models import Client

    create_account("operator1", "Operator-Pass-2026", name="維運人員", kind="member", is_operator=True)
    db.session.commit()
    assert login(client, "operator1", "Operator-Pass-2026").status_code == 302
    page = client.get("/admin/clients/new").get_data(as_text=True)
    assert 'name="ministry_compatible"' in page
    form = {"name": "博物館會員系統", "redirect_uris": "https://museum.example.edu.tw/cb",
            "grant_types": ["authorization_code", "refresh_token"], "scope": ["openid", "profile", "email"],
            "token_endpoint_auth_method": "client_secret_basic", "id_token_signed_response_alg": "RS256",
            "subject_type": "pairwise", "subject_format": "", "ministry_compatible": "y",
            "csrf_token": csrf_from(page)}
    assert client.post("/admin/clients/new", data=form).status_code == 200
    row = db.session.scalar(sa.select(Client).where(Client.name == "博物館會員系統"))
    assert row.ministry_compatible and row.subject_format == "uuid" and "openid2" in row.scope.split()

