"""The operator console and the ``flask clients`` commands (R-O3, issue 2 item 9, issue 3 item 9).

Owns no rules and no tables: the ``/admin/`` pages (apps, signing keys, audit trail, people and
identity conflicts) and the ``clients`` CLI group are views over other packages' services: client
registration in ``idp.oidc.registration``, keys in ``idp.oidc.services``, the audit trail in
``idp.security.audit``, persons and conflicts in ``idp.identity.services``, sessions through
``idp.login.sessions``. Never sees a clear national ID past ``identity.protection``. Must not
import other packages' views.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.admin import (
        accounts,  # noqa: F401  (the accounts pages, on the console's blueprint)
        counties,  # noqa: F401  (the county-accounts page, likewise)
    )
    from idp.admin.commands import clients_cli
    from idp.admin.views import bp

    app.register_blueprint(bp)
    app.cli.add_command(clients_cli)
