"""Accounts: general members and real-name cloud accounts (R-A, R-C).

Owns: the Account model, password hashing and authentication rules (``services``), the
``flask accounts`` commands. Other packages read accounts only through ``services``.
Must not import login, oidc or admin.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.accounts import models  # noqa: F401
    from idp.accounts.commands import accounts_cli

    app.cli.add_command(accounts_cli)
