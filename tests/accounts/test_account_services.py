"""Account rules in ``idp.accounts.services``: names, passwords, hashing."""

from __future__ import annotations

import datetime as dt

import pytest

from idp.accounts import passwords, services
from idp.extensions import db
from idp.identity.nationalid import NationalId
from idp.security.models import AuditEvent


def test_username_is_case_insensitive_and_stored_lower_case(app) -> None:
    """R-L1: the chosen account name is stored lower-case and cannot be taken twice in another case."""
    account = services.create_account("Wang.Xiao-Ming_1", "Long-Enough-1", kind="cloud")
    db.session.commit()
    assert account.username == "wang.xiao-ming_1" and account.kind == "cloud"
    assert services.get_account(account.id) is account
    with pytest.raises(services.UsernameTaken):
        services.create_account("WANG.XIAO-MING_1", "Long-Enough-1")


@pytest.mark.parametrize("name", ["abcde", "a" * 31, "has space", "中文帳號帳號帳號", "bad/slash", "email@x.tw", ""])
def test_username_rules(app, name) -> None:
    """R-L1, R-N4: names outside 6–30 lower-case letters, digits, '.', '_', '-' are refused with a clear message."""
    with pytest.raises(services.InvalidUsername) as exc:
        services.create_account(name, "Long-Enough-1")
    assert "6" in str(exc.value.message) and "30" in str(exc.value.message) and exc.value.field == "username"


def test_a_released_name_is_never_issued_again(app) -> None:
    """R-A2, R-L1: an account name stays taken after its account is renamed or removed."""
    account = services.create_account("first.owner", "Long-Enough-1")
    db.session.commit()
    db.session.delete(account)
    db.session.commit()
    assert services.get_account_by_username("first.owner") is None
    with pytest.raises(services.UsernameTaken):
        services.create_account("first.owner", "Long-Enough-1")


@pytest.mark.parametrize(("password", "reason"), [
    ("short1", "8"), ("", "8"), ("password123", "常見"), ("iloveyou", "常見"), ("Student77-x", "帳號"),
])
def test_password_rules(app, password, reason) -> None:
    """R-L1, R-N4: a password shorter than 8, among the most common, or containing the account name is refused."""
    with pytest.raises(passwords.WeakPassword) as exc:
        services.create_account("student77", password)
    assert reason in str(exc.value.message) and exc.value.field == "password"


def test_passwords_built_from_ones_own_data_are_refused(app) -> None:
    """R-C2: the ID number (or its digits) and the birthday in its usual spellings are refused; others pass."""
    nid = NationalId.parse("A123456789")
    birthday = dt.date(2015, 5, 21)
    for bad, word in [("mia-a123456789", "身分"), ("xx23456789yy", "身分"), ("cat-20150521", "生日"),
                      ("dog-1040521", "生日"), ("bird-2015/05/21", "生日")]:
        with pytest.raises(passwords.WeakPassword) as exc:
            passwords.check(bad, username="wang.ming", national_id=nid, birthday=birthday)
        assert word in str(exc.value.message)
    passwords.check("seven green kites fly", username="wang.ming", national_id=nid, birthday=birthday)


def test_disable_and_enable_record_who_and_why(app) -> None:
    """R-C5: disabling records when, why and by whom (shown to operators); enabling clears it; both audited."""
    account = services.create_account("pupil.disable", "Long-Enough-1", kind="cloud")
    services.disable(account, reason="operator", actor="operator1")
    db.session.commit()
    assert not account.is_active and account.disabled_reason == "operator" and account.disabled_by == "operator1"
    services.enable(account, actor="pupil.disable", how="activation")
    db.session.commit()
    assert account.is_active and account.disabled_reason is None
    events = [e.event for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]
    assert events[-2:] == ["account.disabled", "account.enabled"]


def test_the_inactivity_rule_disables_unused_accounts_but_not_operators(app) -> None:
    """R-C5: accounts unused for account_inactivity_days are disabled with the reason "inactivity"."""
    old = services.create_account("unused.pupil", "Long-Enough-1", kind="cloud")
    operator = services.create_account("unused.operator", "Long-Enough-1", is_operator=True)
    fresh = services.create_account("active.pupil", "Long-Enough-1", kind="cloud")
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    old.created_at = operator.created_at = long_ago
    fresh.last_login_at = dt.datetime.now(dt.UTC)
    db.session.commit()
    assert services.disable_inactive(365) == 1
    db.session.commit()
    assert (old.status, old.disabled_reason, old.disabled_by) == ("disabled", "inactivity", "inactivity-rule")
    assert operator.is_active and fresh.is_active


def test_password_is_hashed_with_argon2id_from_settings(app) -> None:
    """R-N3: passwords are stored as argon2id hashes with the configured parameters, never in clear."""
    account = services.create_account("hashcheck", "Long-Enough-1")
    s = app.extensions["idp.settings"]
    assert account.password_hash.startswith("$argon2id$")
    assert f"m={s.argon2_memory_cost},t={s.argon2_time_cost},p={s.argon2_parallelism}" in account.password_hash
    assert "Long-Enough-1" not in account.password_hash


def test_get_account_unknown_is_none(app) -> None:
    """R-L1: asking for an account that does not exist gives None, not an error."""
    assert services.get_account(None) is None
    assert services.get_account(987654321) is None


def test_authenticate_returns_the_account_and_audits(app) -> None:
    """R-L1, R-N3: the right password returns the account; the audit row names the account as typed."""
    from idp.security.models import AuditEvent

    account = services.create_account("teacher9", "Long-Enough-1")
    db.session.commit()
    with app.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.7"}):
        assert services.authenticate(" Teacher9 ", "Long-Enough-1", "192.0.2.7") is account
        with pytest.raises(services.InvalidCredentials):
            services.authenticate("teacher9", "wrong-password", "192.0.2.7")
        db.session.commit()  # as the login view does, success or failure
    rows = db.session.execute(db.select(AuditEvent).where(AuditEvent.event.like("login.%"))
                              .order_by(AuditEvent.id)).scalars().all()
    assert [(r.event, r.actor) for r in rows] == [("login.success", "Teacher9"), ("login.failure", "teacher9")]
    assert all("Long-Enough" not in str(r.data) and "wrong-password" not in str(r.data) for r in rows)
