"""The person's home at /account/, backup contacts proved by a code, and changing the password (R-C7, R-L1)."""

from __future__ import annotations

import re

import factories
import pytest
from helpers import PASSWORD, csrf_from, login, post_form, sign_in

from idp import notify
from idp.extensions import db
from idp.security.models import AuditEvent
from idp.sources.base import AffiliationRecord


@pytest.fixture
def pupil(app):
    return factories.AccountFactory(username="wang.ming", cloud=True, email="old@example.edu.tw",
                                    email_verified=False)


def _code(to: str) -> str:
    message = next(m for m in notify.outbox() if m.to == to)
    return re.search(r"\b(\d{6})\b", message.text).group(1)


def test_the_home_page_needs_a_sign_in(client) -> None:
    """R-L1: /account/ sends a signed-out person to the login page and back."""
    resp = client.get("/account/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"] and "account" in resp.headers["Location"]


def test_home_shows_school_class_and_contacts(client, pupil) -> None:
    """R-C7, R-O2: a real-name pupil sees school, class, the backup e-mail with its (un)verified state."""
    from idp.identity import services as identity

    person = factories.person("A123456789", AffiliationRecord("014601", "學生", grade=3, class_no="05",
                                                             class_name="三年五班", academic_year=114, semester=1))
    identity.link_account(person, pupil, actor="test")
    db.session.commit()
    sign_in(client, pupil)
    html = client.get("/account/").get_data(as_text=True)
    assert "wang.ming" in html and "014601" in html and "三年五班" in html
    assert "old@example.edu.tw" in html and "未驗證" in html
    assert "A123456789" not in html


def test_a_new_backup_email_is_saved_only_with_its_code(client, pupil) -> None:
    """R-C7: the code goes to the new address; typing it back saves that address as verified."""
    sign_in(client, pupil)
    sent = post_form(client, "/account/contact/email", {"value": "new@example.edu.tw"})
    assert sent.status_code == 302 and sent.headers["Location"].endswith("/account/contact/email/verify")
    page = client.get("/account/contact/email/verify").get_data(as_text=True)
    assert "ne*@example.edu.tw" in page or "n**@example.edu.tw" in page or "@example.edu.tw" in page
    wrong = client.post("/account/contact/email/verify", data={"csrf_token": csrf_from(page), "code": "000000"})
    assert wrong.status_code == 400 and "4" in wrong.get_data(as_text=True)  # tries left
    assert pupil.email == "old@example.edu.tw"
    ok = post_form(client, "/account/contact/email/verify", {"code": _code("new@example.edu.tw")})
    assert ok.status_code == 302
    db.session.refresh(pupil)
    assert (pupil.email, pupil.email_verified) == ("new@example.edu.tw", True)
    events = [e.event for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]
    assert "otp.failed" in events and events[-1] == "contact.verified"


def test_a_mobile_number_is_normalised_and_verified(client, pupil) -> None:
    """R-C7: a mobile typed with spaces, dashes or +886 is stored as 09xxxxxxxx once its SMS code is typed back."""
    sign_in(client, pupil)
    assert post_form(client, "/account/contact/mobile", {"value": "+886 912-345-678"}).status_code == 302
    assert post_form(client, "/account/contact/mobile/verify", {"code": _code("0912345678")}).status_code == 302
    db.session.refresh(pupil)
    assert (pupil.phone, pupil.phone_verified) == ("0912345678", True)


def test_a_bad_address_is_refused_beside_its_field(client, pupil) -> None:
    """R-N4: an address that cannot be one gets a 400 and a message beside the field; nothing is sent."""
    sign_in(client, pupil)
    before = len(notify.outbox())
    resp = post_form(client, "/account/contact/email", {"value": "not-an-address"})
    assert resp.status_code == 400 and 'id="value-error"' in resp.get_data(as_text=True)
    assert len(notify.outbox()) == before


def test_changing_the_password_needs_the_current_one_and_follows_the_rules(client, pupil) -> None:
    """R-L1, R-N3: a wrong current password or a weak new one is refused beside its field; then sign in with the new."""
    sign_in(client, pupil)
    wrong = post_form(client, "/account/password", {"current": "nope-nope", "new": "seven green kites",
                                                   "again": "seven green kites"})
    assert wrong.status_code == 400 and 'id="current-error"' in wrong.get_data(as_text=True)
    weak = post_form(client, "/account/password", {"current": PASSWORD, "new": "password1", "again": "password1"})
    assert weak.status_code == 400 and 'id="new-error"' in weak.get_data(as_text=True)
    done = post_form(client, "/account/password", {"current": PASSWORD, "new": "seven green kites",
                                                  "again": "seven green kites"})
    assert done.status_code == 302
    other = client.application.test_client()
    assert login(other, "wang.ming", PASSWORD).status_code == 401
    assert login(other, "wang.ming", "seven green kites").status_code == 302
    assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "password.check_failed")) is not None


def test_allowed_apps_show_when_and_what_and_can_be_removed(client, pupil) -> None:
    """R-L4, R-C7: /account/apps lists each app with when it was allowed and what it receives; removing ends it."""
    from idp.oidc.models import Consent

    rp = factories.ClientFactory(client_id="market", name="教育大市集")
    db.session.add(Consent(account_id=pupil.id, client_id=rp.client_id, scope="openid profile"))
    db.session.commit()
    sign_in(client, pupil)
    page = client.get("/account/apps").get_data(as_text=True)
    assert "教育大市集" in page and "授權時間" in page and "/account/" in page
    assert post_form(client, "/account/apps", {"client_id": "market"}).status_code == 302
    assert "教育大市集" not in client.get("/account/apps").get_data(as_text=True)


def test_an_account_without_a_password_sets_its_first_one(client) -> None:
    """R-L2, R-L1: a county-made account (no password) sets one without a current password, then signs in with it."""
    made = factories.AccountFactory(username="ntpc.kid001", cloud=True, password_hash=None)
    sign_in(client, made)
    page = client.get("/account/password").get_data(as_text=True)
    assert 'name="current"' not in page
    done = post_form(client, "/account/password", {"new": "seven green kites", "again": "seven green kites"})
    assert done.status_code == 302
    assert login(client.application.test_client(), "ntpc.kid001", "seven green kites").status_code == 302
