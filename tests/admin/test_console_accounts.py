"""The console's accounts page /admin/accounts (issue 10 items 7 and 14; R-C5, R-N3): find an account by its
name, see why it cannot sign in, disable it with a note, enable it, unlock its sign-in."""

from __future__ import annotations

import re

import factories
import pytest
import sqlalchemy as sa
from admin_helpers import OPERATOR_PASSWORD, csrf_from, post_form
from helpers import PASSWORD, login, sign_in

from idp.accounts import services as accounts
from idp.extensions import db
from idp.identity import services as identity
from idp.schools import loaders
from idp.security.models import AuditEvent
from idp.sources.base import AffiliationRecord


@pytest.fixture
def pupil_account(app):
    """A pupil's cloud account, linked to the pupil, with a confirmed backup e-mail."""
    loaders.apply([(1, loaders.make_row(code="014601", name="新北市板橋區板橋國民小學", county_code="01",
                                         county="新北市", district="板橋區", level="國小"))])
    person = factories.person("E125837464", AffiliationRecord("014601", "學生", grade=3), name="林小華")
    account = factories.AccountFactory(username="lin.hua01", cloud=True, name="林小華", email="hua@example.edu.tw")
    identity.link_account(person, account, actor="test")
    person.current_school_code = "014601"
    db.session.commit()
    return account


def _events(name: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)))


def _page(console, account) -> str:
    return console.get(f"/admin/accounts/{account.id}?lang=en").get_data(as_text=True)


def _act(console, account, action: str, data: dict | None = None):
    html = _page(console, account)
    token = re.search(rf'action="/admin/accounts/{account.id}/{action}"[^>]*>\s*<input id="{action}-csrf_token" '
                      r'name="[^"]+" type="hidden" value="([^"]+)"', html)
    assert token, f"no {action} form on the page"
    prefixed = {f"{action}-{k}": v for k, v in (data or {}).items()}
    return console.post(f"/admin/accounts/{account.id}/{action}?lang=en",
                        data={f"{action}-csrf_token": token.group(1), **prefixed})


def test_find_an_account_by_its_name_and_see_who_it_is(console, pupil_account) -> None:
    """R-N3: the exact name (any case) leads to the account page: kind, status, masked e-mail, last sign-in,
    the linked person (a link to the person page) and the current school; the look-up is audited."""
    resp = post_form(console, "/admin/accounts", {"username": "Lin.Hua01"})
    assert resp.headers["Location"] == f"/admin/accounts/{pupil_account.id}"
    html = _page(console, pupil_account)
    assert "education cloud account" in html and 'data-account-status="active"' in html
    assert "h***@example.edu.tw" in html and "hua@example.edu.tw" not in html and "never" in html
    person = identity.person_for_account(pupil_account.id)
    assert f'href="/admin/people/{person.id}"' in html and "板橋國民小學" in html
    assert _events("account.lookup")[-1].data == {"found": True, "account_id": pupil_account.id}
    assert _events("account.lookup")[-1].actor == "operator1"


def test_an_unknown_name_is_said_beside_the_field(console) -> None:
    """R-N4: a name nobody has → 404 with the message beside the field; the look-up is audited."""
    resp = post_form(console, "/admin/accounts?lang=en", {"username": "nobody.here"}, page="/admin/accounts?lang=en")
    assert resp.status_code == 404 and "no account with this name" in resp.get_data(as_text=True)
    assert _events("account.lookup")[-1].data == {"found": False}


def test_an_account_disabled_by_the_inactivity_rule_says_so(console, pupil_account) -> None:
    """R-C5: who disabled it, why and when are shown: here the inactivity rule."""
    accounts.disable(pupil_account, reason="inactivity", actor="inactivity-rule")
    db.session.commit()
    html = _page(console, pupil_account)
    assert 'data-account-status="disabled"' in html and "inactivity rule" in html


def test_disable_with_a_note_signs_the_person_out_everywhere(app, console, pupil_account) -> None:
    """R-C5, R-N3: an operator disables with a note: the page shows who and the note, the audit row keeps it, the
    person's sessions end at once and sign-in is refused; enabling lets the old password in again."""
    browser = app.test_client()
    sign_in(browser, pupil_account)
    assert browser.get("/account/").status_code == 200
    resp = _act(console, pupil_account, "disable", {"note": "家長來電：帳號疑似外洩"})
    assert resp.status_code == 302
    html = _page(console, pupil_account)
    assert "by operator operator1" in html and "家長來電：帳號疑似外洩" in html
    assert _events("account.disabled")[-1].data == {"account_id": pupil_account.id, "reason": "operator",
                                                    "note": "家長來電：帳號疑似外洩"}
    assert browser.get("/account/").status_code == 302
    assert login(app.test_client(), "lin.hua01").status_code == 403
    assert _act(console, pupil_account, "enable").status_code == 302
    assert _events("account.enabled")[-1].data["how"] == "operator"
    assert login(app.test_client(), "lin.hua01").status_code == 302


def test_disable_needs_a_note_and_never_the_operators_own_account(console, operator, pupil_account) -> None:
    """R-N4: no note → 400 beside the field, nothing changes; an operator cannot disable their own account."""
    resp = _act(console, pupil_account, "disable", {"note": "  "})
    assert resp.status_code == 400 and 'id="disable-note-error"' in resp.get_data(as_text=True)
    db.session.expire_all()
    assert accounts.get_account(pupil_account.id).is_active
    resp = _act(console, operator, "disable", {"note": "oops"})
    assert resp.status_code == 400 and "your own account" in resp.get_data(as_text=True)


def test_unlock_lets_the_owner_in_at_once_after_a_classmates_guesses(app, console, pupil_account) -> None:
    """R-N3 (issue 10 item 14): after guesses from the pupil's school the right password waits; the operator's
    unlock forgets them, the owner signs in at once; the unlock is audited with how many were forgotten."""
    classroom = app.test_client()
    for _ in range(app.extensions["idp.settings"].login_free_failures):
        assert login(classroom, "lin.hua01", "wrong-password").status_code == 401
    assert login(classroom, "lin.hua01", PASSWORD).status_code == 429
    assert 'data-failures="5"' in _page(console, pupil_account)
    assert _act(console, pupil_account, "unlock").status_code == 302
    assert login(classroom, "lin.hua01", PASSWORD).status_code == 302
    assert _events("account.unlocked")[-1].data == {"account_id": pupil_account.id, "failures": 5}
    assert _events("account.unlocked")[-1].actor == "operator1"


def test_the_accounts_pages_are_for_operators_only(client, app, pupil_account) -> None:
    """R-N3: signed out → the login page; a pupil → 403."""
    assert "/login" in client.get("/admin/accounts").headers["Location"]
    sign_in(client, pupil_account)
    assert client.get(f"/admin/accounts/{pupil_account.id}").status_code == 403


def test_the_console_nav_leads_to_the_accounts_page(console) -> None:
    """R-N3: the console's menu has the accounts page, marked as current there."""
    html = console.get("/admin/accounts?lang=en").get_data(as_text=True)
    assert re.search(r'<a href="/admin/accounts" aria-current="page">Accounts</a>', html)
    assert csrf_from(html) and OPERATOR_PASSWORD not in html
