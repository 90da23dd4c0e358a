"""No national ID leaves the identity package during a full sign-in (issue 3 item 2, R-S4).

A pupil known from two sources signs in to an app asking for every scope, the app redeems the
code, reads userinfo, the ministry's profile and eduinfo resources, introspects, refreshes,
and the pupil logs out. Every response (status line, headers, body) and every log record at
DEBUG is searched for the pupil's ID in the forms it could take.
"""

from __future__ import annotations

import hashlib
import logging

from oidc_helpers import basic, get_code, redeem, sign_in

from idp.extensions import db
from idp.identity.nationalid import NationalId
from idp.sources import resolver
from idp.sources.base import AffiliationRecord, PersonRecord

PUPIL_ID = "F131104093"


def test_full_flow_never_shows_the_national_id(client, make_client, account, link_person, caplog) -> None:
    """R-S4: responses and logs of a whole flow hold no national ID, in any spelling or hashed plainly."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    original = client.open

    def recording_open(*args, **kwargs):
        resp = original(*args, **kwargs)
        seen.append(f"{resp.status} {list(resp.headers.items())} {resp.get_data(as_text=True)}")
        return resp

    client.open = recording_open  # type: ignore[method-assign]
    scopes = "openid profile email phone eduinfo guid"
    rp = make_client(scope=scopes)
    link_person(account, PUPIL_ID, AffiliationRecord("014601", "學生", grade=3, class_no="05", class_name="三年五班"))
    resolver.merge_batch("proxy", [PersonRecord("proxy", NationalId.parse(PUPIL_ID), "王小明",
                                                birth_month_day="0521")])
    db.session.commit()
    sign_in(client, account)
    client.get("/")
    tokens = redeem(client, rp, get_code(client, rp, scope=scopes)).get_json()
    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    for path in ("/oauth/userinfo", "/oidc/v1/userinfo", "/moeresource/api/v1/oidc/profile",
                 "/moeresource/api/v1/oidc/eduinfo"):
        assert client.get(path, headers=bearer).status_code == 200
    client.post("/oauth/introspect", data={"token": tokens["access_token"]}, headers=basic(rp.client_id))
    refreshed = client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                  "refresh_token": tokens["refresh_token"]},
                            headers=basic(rp.client_id))
    assert refreshed.status_code == 200
    client.get("/account/apps")
    client.get("/logout")
    assert len(seen) >= 10

    forms = {PUPIL_ID, PUPIL_ID.lower(), PUPIL_ID[1:], hashlib.sha256(PUPIL_ID.encode()).hexdigest(),
             hashlib.sha256(PUPIL_ID.encode()).hexdigest().upper()}
    said = "\n".join(seen) + "\n" + caplog.text + "\n".join(str(r.args) for r in caplog.records)
    for form in forms:
        assert form not in said
    assert "三年五班" in said  # the flow did reach the education data
