"""The operator console and the ``flask clients`` commands (R-O3, issue 2 item 9, issue 3 item 9).

Owns: relying-party registration rules (``services``), the ``/admin/`` pages (apps, signing
keys, audit trail, people and identity conflicts) and the ``clients`` CLI group. Reads accounts
and sessions only through ``idp.accounts.services`` and ``idp.login.sessions``, persons only
through ``idp.identity`` and ``idp.sources.resolver``; never sees a clear national ID past
``identity.protection``. Must not import other packages' views.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.admin.commands import clients_cli
    from idp.admin.views import bp

    app.register_blueprint(bp)
    app.cli.add_command(clients_cli)
