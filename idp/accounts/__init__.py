"""Accounts: general members and real-name cloud accounts (R-A, R-C).

Owns: the Account model, password and account-name rules (``passwords``, ``services``),
authentication, disabling and enabling, the identification step the self-service flows share
(``identify``), their server-side state (``idp.wizard``), the ``/account`` pages (``views`` and one
sub-package per flow) and the ``flask accounts`` commands. Other packages read and change accounts
only through ``services``. Must not import login, oidc or admin (the signed-in account comes
through the ``idp.current_account`` hook).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.accounts import models  # noqa: F401
    from idp.accounts.commands import accounts_cli
    from idp.accounts.views import bp

    app.register_blueprint(bp)
    app.cli.add_command(accounts_cli)
