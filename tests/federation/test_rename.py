"""Changing an account name later (R-L1, R-L2: the name a county sign-in made up is the person's to change)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from helpers import PASSWORD, csrf_from, login, sign_in

from idp.accounts import services as accounts
from idp.accounts.models import UsedUsername
from idp.errors import InvalidField
from idp.extensions import db
from idp.security.models import AuditEvent


def test_rename_keeps_the_old_name_taken_for_ever(app) -> None:
    """R-L1: the new name follows the rule and was never used; the old name stays used (never reissued);
    audited with both names."""
    account = accounts.create_account("ntpc.linxh2016", None, name="林小華", kind="cloud")
    accounts.rename(account, "Lin.Xiaohua", actor="ntpc.linxh2016")
    db.session.commit()
    assert account.username == "lin.xiaohua"
    assert {u.username for u in db.session.scalars(sa.select(UsedUsername))} == {"ntpc.linxh2016", "lin.xiaohua"}
    with pytest.raises(accounts.UsernameTaken):
        accounts.check_username("ntpc.linxh2016")
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.event == "account.renamed"))
    assert event.data["was"] == "ntpc.linxh2016" and event.data["now"] == "lin.xiaohua"


@pytest.mark.parametrize("name", ["ab", "Has Space", "student1"])
def test_rename_refuses_bad_or_taken_names(app, name) -> None:
    """R-L1: a name against the rule, or one already taken, is refused beside the field."""
    accounts.create_account("student1", PASSWORD, kind="member")
    account = accounts.create_account("ntpc.linxh2016", None, kind="cloud")
    with pytest.raises(InvalidField):
        accounts.rename(account, name, actor="x")


def test_a_person_renames_their_account_on_the_account_page(app, client) -> None:
    """R-L1, R-L2: on the account page a person chooses a new account name and signs in with it from then on."""
    account = accounts.create_account("student1", PASSWORD, name="王小明", kind="cloud")
    db.session.commit()
    sign_in(client, account)
    assert 'href="/account/username"' in client.get("/account/").get_data(as_text=True)
    page = client.get("/account/username").get_data(as_text=True)
    resp = client.post("/account/username", data={"csrf_token": csrf_from(page), "username": "wang.xiaoming"})
    assert resp.status_code == 302
    assert "wang.xiaoming" in client.get("/account/").get_data(as_text=True)
    other = app.test_client()
    assert login(other, "wang.xiaoming").status_code == 302
    bad = client.post("/account/username", data={"csrf_token": csrf_from(page), "username": "x"})
    assert bad.status_code == 400
