"""The console's county page (R-L2, issue 12 item 6): the county providers, their state (metadata reachable,
last error, sign-ins today), and unlinking a person's federated link."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from factories import AccountFactory
from federation_helpers import PUPIL_ID, county_person, county_round_trip
from helpers import PASSWORD, csrf_from, sign_in

from idp.accounts import services as accounts
from idp.extensions import db
from idp.federation.models import FederatedLink
from idp.identity import services as identity
from idp.security.models import AuditEvent


@pytest.fixture
def wang(counties: Any) -> Any:
    person = county_person(PUPIL_ID, "王小明", "wangxm2016")
    account = accounts.create_account("student1", PASSWORD, name="王小明", kind="cloud")
    identity.link_account(person, account, actor="test")
    db.session.commit()
    return account


@pytest.fixture
def operator(app: Any) -> Any:
    return AccountFactory(username="operator1", operator=True)


def _row(html: str, name: str) -> str:
    return re.search(rf'<tr data-county="{name}">(.*?)</tr>', html, re.S).group(1)


def test_the_console_lists_the_counties_with_their_state(app, client, county, wang, operator) -> None:
    """R-L2: operators see each configured county (name, issuer, the URIs to register there) with its state:
    not contacted yet, then reachable with today's sign-ins and links, or unreachable with the last error."""
    browser = app.test_client()
    sign_in(browser, operator)
    html = browser.get("/admin/counties").get_data(as_text=True)
    ntpc = _row(html, "ntpc")
    assert "新北市" in ntpc and county.issuer in ntpc and "http://localhost/login/county/ntpc/callback" in ntpc
    assert "http://localhost/login/county/ntpc/logged-out" in ntpc
    assert 'data-state="unknown"' in ntpc
    county_round_trip(client, county)
    client.get("/login/county/tpe")
    html = browser.get("/admin/counties").get_data(as_text=True)
    ntpc, tpe = _row(html, "ntpc"), _row(html, "tpe")
    assert 'data-state="up"' in ntpc and re.search(r"data-logins-today>1<", ntpc) and re.search(r"data-links>1<", ntpc)
    assert 'data-state="down"' in tpe and "discovery: cannot connect" in tpe and "臺北市" in tpe


def test_check_now_fetches_the_metadata_again(app, county, counties, operator) -> None:
    """R-L2: "check now" fetches a county's discovery and keys: reachable ones turn up, a dead one down."""
    browser = app.test_client()
    sign_in(browser, operator)
    token = csrf_from(browser.get("/admin/counties").get_data(as_text=True))
    for name in ("ntpc", "tpe"):
        assert browser.post(f"/admin/counties/{name}/check", data={"check-csrf_token": token}).status_code == 302
    html = browser.get("/admin/counties").get_data(as_text=True)
    assert 'data-state="up"' in _row(html, "ntpc") and 'data-state="down"' in _row(html, "tpe")
    assert "/jwks" in county.requests


def test_an_operator_unlinks_a_persons_county_link(app, client, county, wang, operator) -> None:
    """R-L2: found by account name, a person's county link is shown and removed; the unlink is audited."""
    county_round_trip(client, county)
    browser = app.test_client()
    sign_in(browser, operator)
    token = csrf_from(browser.get("/admin/counties").get_data(as_text=True))
    found = browser.post("/admin/counties", data={"csrf_token": token, "username": "student1"})
    assert found.status_code == 302
    page = browser.get(found.headers["Location"]).get_data(as_text=True)
    action = re.search(r'<form method="post" action="([^"]+/unlink[^"]*)"', page).group(1).replace("&amp;", "&")
    assert "新北市" in page
    assert browser.post(action, data={"csrf_token": csrf_from(page)}).status_code == 302
    assert db.session.scalar(sa.select(FederatedLink)) is None
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.event == "federation.unlinked"))
    assert event.actor == "operator1" and event.data["county"] == "ntpc"
    assert "federation.unlinked" not in browser.get(found.headers["Location"]).get_data(as_text=True)


def test_an_unknown_account_name_is_said_so(app, counties, operator) -> None:
    """R-L2: a look-up of an account that does not exist answers so beside the field (404)."""
    browser = app.test_client()
    sign_in(browser, operator)
    token = csrf_from(browser.get("/admin/counties").get_data(as_text=True))
    resp = browser.post("/admin/counties", data={"csrf_token": token, "username": "nobody-here"})
    assert resp.status_code == 404 and "沒有這個帳號。" in resp.get_data(as_text=True)


def test_only_operators_see_the_county_page(app, counties, wang) -> None:
    """R-L2, R-N3: the county page is part of the console: others get 403."""
    browser = app.test_client()
    sign_in(browser, wang)
    assert browser.get("/admin/counties").status_code == 403
