"""``flask accounts create``: the bootstrap command operators and tests use."""

from __future__ import annotations

import json

from idp.accounts.models import Account
from idp.extensions import db


def test_create_reads_password_from_stdin(app) -> None:
    """R-O3: an operator account is created with the password from stdin, never argv, hashed."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=["accounts", "create", "Ops.Lead", "--password-stdin", "--operator",
                                 "--name", "維運人員", "--json"], input="Very-Secret-Pass-1\n")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    account = db.session.get(Account, data["id"])
    assert account.username == "ops.lead" and account.is_operator
    assert account.password_hash.startswith("$argon2id$") and "Very-Secret" not in account.password_hash


def test_create_refuses_bad_input_with_a_message(app) -> None:
    """R-N4: a weak password or taken name is a clear error and a non-zero exit."""
    runner = app.test_cli_runner()
    weak = runner.invoke(args=["accounts", "create", "someone", "--password-stdin"], input="short\n")
    assert weak.exit_code != 0 and "8" in weak.output
    ok = runner.invoke(args=["accounts", "create", "someone", "--password-stdin"], input="Long-Enough-1\n")
    assert ok.exit_code == 0
    taken = runner.invoke(args=["accounts", "create", "SOMEONE", "--password-stdin"], input="Long-Enough-1\n")
    assert taken.exit_code != 0


def test_create_cloud_account_with_email(app) -> None:
    """R-A2, R-C7: --cloud makes a cloud account; --email is recorded but NOT verified (nobody proved it)."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=["accounts", "create", "teacher.lin", "--password-stdin", "--cloud",
                                 "--email", "lin@example.edu.tw", "--json"], input="Long-Enough-1\n")
    assert result.exit_code == 0, result.output
    account = db.session.get(Account, json.loads(result.output)["id"])
    assert account.kind == "cloud" and account.email == "lin@example.edu.tw" and not account.email_verified
    assert not account.is_operator
