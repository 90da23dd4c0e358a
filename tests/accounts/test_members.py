"""一般會員註冊 at /account/join (R-A1): an e-mail code, then the account; members sign in to apps that accept
them, and apps that need real names refuse them with a clear page (R-A3)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from factories import AccountFactory, ClientFactory
from flask.testing import FlaskClient
from helpers import csrf_from, login, sign_in

from idp import notify
from idp.accounts.models import Account
from idp.extensions import db
from idp.security.models import AuditEvent

EMAIL = "parent.lin@example.com"
NEW_PASSWORD = "river stones at dawn"
REDIRECT = "https://rp.example.org/callback"


def step(client: FlaskClient, path: str, data: dict[str, Any]) -> Any:
    """Post a step's form as a browser would (its page first, for the CSRF token)."""
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code, page.headers.get("Location"))
    return client.post(path, data={**data, "csrf_token": csrf_from(page.get_data(as_text=True))})


def code_sent_to(address: str) -> str:
    message = next(m for m in notify.outbox() if m.to == address)
    return re.search(r"\b(\d{6})\b", message.text).group(1)


def account(username: str) -> Account | None:
    return db.session.execute(db.select(Account).filter_by(username=username)).scalar_one_or_none()


def events(name: str) -> list[AuditEvent]:
    return db.session.execute(db.select(AuditEvent).filter_by(event=name)).scalars().all()


def prove(client: FlaskClient, email: str = EMAIL) -> None:
    """Steps 1 and 2: the address and the code sent to it."""
    sent = step(client, "/account/join", {"email": email})
    assert sent.status_code == 302 and sent.headers["Location"] == "/account/join/code"
    proved = step(client, "/account/join/code", {"code": code_sent_to(email)})
    assert proved.status_code == 302 and proved.headers["Location"] == "/account/join/account"


def test_member_signs_up_with_an_emailed_code_then_signs_in(client) -> None:
    """R-A1: e-mail → the code from the mail → account name and password → a member account with the address
    verified; the last page offers to sign in, on to where the login page was going."""
    start = client.get("/account/join?next=%2Faccount%2Fapps")
    assert start.status_code == 302 and start.headers["Location"] == "/account/join"
    prove(client)
    made = step(client, "/account/join/account", {"username": "Lin.Parent", "name": "林家長", "password": NEW_PASSWORD,
                                                   "password_again": NEW_PASSWORD})
    assert made.status_code == 302 and made.headers["Location"] == "/account/join/done"
    done = client.get("/account/join/done").get_data(as_text=True)
    sign_in = re.search(r'<a class="button" href="([^"]+)"', done).group(1)
    assert "lin.parent" in done and urlsplit(sign_in).path == "/login"
    assert parse_qs(urlsplit(sign_in).query) == {"next": ["/account/apps"]}
    member = account("lin.parent")
    assert member is not None and member.kind == "member" and member.name == "林家長"
    assert member.email == EMAIL and member.email_verified is True
    assert [e.data["kind"] for e in events("account.created")] == ["member"]
    assert events("otp.verified") and NEW_PASSWORD not in str([e.data for e in events("account.created")])
    signed = login(client, "lin.parent", NEW_PASSWORD, next_url="/account/apps")
    assert signed.status_code == 302 and signed.headers["Location"] == "/account/apps"


def test_nothing_personal_goes_into_a_url(client) -> None:
    """R-A1, R-N3: the address and the code travel in forms only: no redirect carries them."""
    sent = step(client, "/account/join", {"email": EMAIL})
    proved = step(client, "/account/join/code", {"code": code_sent_to(EMAIL)})
    for resp in (sent, proved):
        assert "example.com" not in resp.headers["Location"] and "@" not in resp.headers["Location"]
        assert resp.headers["Cache-Control"] == "no-store"


def test_a_wrong_code_is_refused_beside_the_field_and_creates_nothing(client) -> None:
    """R-A1, R-N4: a wrong code gets a message beside the field and no account; the right one then works."""
    step(client, "/account/join", {"email": EMAIL})
    right = code_sent_to(EMAIL)
    wrong = "000000" if right != "000000" else "111111"
    refused = step(client, "/account/join/code", {"code": wrong})
    assert refused.status_code == 400 and 'id="code-error"' in refused.get_data(as_text=True)
    assert client.get("/account/join/account").status_code == 302  # not proved: back to the start
    assert events("otp.failed")
    assert step(client, "/account/join/code", {"code": right}).status_code == 302
    assert db.session.scalar(db.select(db.func.count()).select_from(Account)) == 0


def test_steps_reached_too_early_go_back_to_the_first(client) -> None:
    """R-A1: a bookmarked later step, with no sign-up going on, leads to the first step, never an error."""
    for path in ("/account/join/code", "/account/join/account", "/account/join/done"):
        resp = client.get(path)
        assert resp.status_code == 302 and resp.headers["Location"] == "/account/join", path


def test_back_and_reload_show_the_steps_again(client) -> None:
    """R-A1: after the code, going back to the code page goes on to the account step; reloading it shows it again."""
    prove(client)
    assert client.get("/account/join/code").headers["Location"] == "/account/join/account"
    assert client.get("/account/join/account").status_code == 200
    assert client.get("/account/join/account").status_code == 200


def test_taken_name_and_weak_password_are_refused_beside_the_field(client) -> None:
    """R-A1, R-N4: a name already taken (409) and a common password (400) are refused beside their fields;
    nothing is created and the proved address still holds for the next try."""
    AccountFactory(username="lin.parent")
    prove(client)
    taken = step(client, "/account/join/account", {"username": "lin.parent", "password": NEW_PASSWORD,
                                                    "password_again": NEW_PASSWORD})
    assert taken.status_code == 409 and 'id="username-error"' in taken.get_data(as_text=True)
    weak = step(client, "/account/join/account", {"username": "lin.parent2", "password": "password1",
                                                  "password_again": "password1"})
    assert weak.status_code == 400 and 'id="password-error"' in weak.get_data(as_text=True)
    assert NEW_PASSWORD not in taken.get_data(as_text=True) and account("lin.parent2") is None
    assert step(client, "/account/join/account", {"username": "lin.parent2", "password": NEW_PASSWORD,
                                                  "password_again": NEW_PASSWORD}).status_code == 302
    assert account("lin.parent2").email == EMAIL


def test_a_bad_address_is_refused_beside_the_field_and_nothing_is_sent(client) -> None:
    """R-A1, R-N4: something that cannot be an e-mail address gets a message beside the field; no mail goes out."""
    resp = step(client, "/account/join", {"email": "not-an-address"})
    assert resp.status_code == 400 and 'id="email-error"' in resp.get_data(as_text=True)
    assert notify.outbox() == []


def test_codes_to_one_address_are_limited(client, app) -> None:
    """R-A1, R-N3: asking again and again for codes to one address is refused past the otp.send limit (429,
    beside the field, with Retry-After)."""
    allowed = app.extensions["idp.settings"].otp_sends_per_target
    for _ in range(allowed):
        assert step(client, "/account/join", {"email": EMAIL}).status_code == 302
    refused = step(client, "/account/join", {"email": EMAIL})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert 'id="email-error"' in refused.get_data(as_text=True)
    assert len([m for m in notify.outbox() if m.to == EMAIL]) == allowed


def _authorize(client_id: str, **extra: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(secrets.token_bytes(32)).digest()).rstrip(b"=").decode()
    return "/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid profile email",
        "state": "s1", "nonce": "n1", "code_challenge": challenge, "code_challenge_method": "S256", **extra})


def test_a_new_member_signs_in_to_an_app_that_accepts_members(client) -> None:
    """R-A1: a member who just signed up signs in to an app that accepts members and the app gets its code."""
    ClientFactory(client_id="market", skip_consent=True)
    prove(client)
    step(client, "/account/join/account", {"username": "lin.parent", "password": NEW_PASSWORD,
                                           "password_again": NEW_PASSWORD})
    login_page = client.get(_authorize("market"))  # the login page, answered by the request itself
    assert login_page.status_code == 200 and 'type="password"' in login_page.get_data(as_text=True)
    signed = login(client, "lin.parent", NEW_PASSWORD, next_url=_authorize("market"))  # straight on to the app
    assert signed.status_code == 302 and signed.headers["Location"].startswith(REDIRECT + "?code=")


def test_an_app_requiring_real_names_refuses_a_member_with_a_way_to_apply(client) -> None:
    """R-A3: a member at an app that requires real-name accounts gets the refusal page (403) linking to
    申請帳號, and no code."""
    ClientFactory(client_id="exam", require_real_name=True, skip_consent=True)
    prove(client)
    step(client, "/account/join/account", {"username": "lin.parent", "password": NEW_PASSWORD,
                                           "password_again": NEW_PASSWORD})
    login(client, "lin.parent", NEW_PASSWORD)
    refused = client.get(_authorize("exam"))
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403 and 'data-error="real_name_required"' in html
    assert 'href="/account/apply"' in html and "Location" not in refused.headers


def test_on_a_shared_computer_the_new_member_is_asked_to_sign_in(client) -> None:
    """R-A1: with someone else still signed in on the browser, the last page's 登入 shows the login form
    (empty), not the other person's session."""
    sign_in(client, AccountFactory(username="sibling01"))
    prove(client)
    step(client, "/account/join/account", {"username": "lin.parent", "password": NEW_PASSWORD,
                                           "password_again": NEW_PASSWORD})
    done = client.get("/account/join/done").get_data(as_text=True)
    href = re.search(r'<a class="button" href="([^"]+)"', done).group(1).replace("&amp;", "&")
    page = client.get(href)
    assert page.status_code == 200 and re.search(r'name="username"[^>]*value=""', page.get_data(as_text=True))
