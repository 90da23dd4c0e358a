"""``flask accounts create``: bootstrap accounts for operators, the demo and tests (issue 2 item 9)."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import AppGroup

from idp.errors import IdpError
from idp.extensions import db

accounts_cli = AppGroup("accounts", help="Manage sign-in accounts.")


@accounts_cli.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the password from standard input (never from the command line).")
@click.option("--name", default="", help="The person's name.")
@click.option("--email", default=None,
              help="Backup e-mail address, recorded as NOT verified: its owner verifies it with a code.")
@click.option("--operator", is_flag=True, help="May use the operator console.")
@click.option("--cloud", is_flag=True, help="A real-name education cloud account instead of a general member.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def create(username: str, password_stdin: bool, name: str, email: str | None, operator: bool, cloud: bool,
           as_json: bool) -> None:
    """Create an account; the password is read from stdin (first line)."""
    from idp.accounts.services import create_account

    password = sys.stdin.readline().rstrip("\r\n")
    try:
        account = create_account(username, password, name=name, email=email, email_verified=False,
                                 kind="cloud" if cloud else "member", is_operator=operator, actor="cli")
        db.session.commit()
    except IdpError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc.message)) from None
    if as_json:
        click.echo(json.dumps({"id": account.id, "username": account.username, "kind": account.kind,
                               "is_operator": account.is_operator}))
    else:
        click.echo(f"created account {account.username} (id {account.id}, {account.kind})")


@accounts_cli.command("disable-inactive")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Disable accounts unused for this many days [default: the setting account_inactivity_days].")
def disable_inactive(days: int | None) -> None:
    """Disable accounts nobody signed in to for a long time (the inactivity rule, R-C5); students
    re-activate theirs with their personal data. Run it daily from cron; it says how many it disabled."""
    from idp.accounts.services import disable_inactive as run
    from idp.extensions import settings

    days = days or settings().account_inactivity_days
    if not days:
        click.echo("the inactivity rule is off (account_inactivity_days = 0): nothing to do")
        return
    total = 0
    while True:
        n = run(days)
        db.session.commit()
        total += n
        if n == 0:
            break
    click.echo(f"disabled {total} account(s) unused for {days} days")
