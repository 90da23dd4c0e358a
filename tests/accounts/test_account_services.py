"""Account rules in ``idp.accounts.services``: names, passwords, hashing."""

from __future__ import annotations

import pytest

from idp.accounts import services
from idp.extensions import db


def test_username_is_case_insensitive_and_stored_lower_case(app) -> None:
    """R-L1: the chosen account name is stored lower-case and cannot be taken twice in another case."""
    account = services.create_account("Wang.Xiao-Ming_1", "Long-Enough-1", kind="cloud")
    db.session.commit()
    assert account.username == "wang.xiao-ming_1" and account.kind == "cloud"
    assert services.get_account(account.id) is account
    with pytest.raises(services.UsernameTaken):
        services.create_account("WANG.XIAO-MING_1", "Long-Enough-1")


@pytest.mark.parametrize("name", ["abc", "a" * 65, "has space", "中文帳號", "bad/slash", "-leading", ""])
def test_username_rules(app, name) -> None:
    """R-L1, R-N4: names outside 4–64 letters, digits, '.', '_', '-' are refused with a clear message."""
    with pytest.raises(services.InvalidUsername) as exc:
        services.create_account(name, "Long-Enough-1")
    assert "4" in str(exc.value.message) and "64" in str(exc.value.message)


@pytest.mark.parametrize("password", ["short1", "", "Student77"])
def test_password_rules(app, password) -> None:
    """R-L1, R-N4: a password shorter than 8 characters or equal to the account name is refused."""
    with pytest.raises(services.WeakPassword):
        services.create_account("student77", password)


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
