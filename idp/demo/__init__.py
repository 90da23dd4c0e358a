"""Demo data for a first run and for the end-to-end tests (issue 2 item 11, R-N1).

Owns: ``flask demo load``, which creates (idempotently) the demo student, teacher and
operator and registers the demo relying party (``clients/demo_rp``), writing its client
secret to ``instance/demo_rp.env`` for the demo app to read. Never runs in production.
Creates accounts through ``idp.accounts.services``, links them with ``idp.identity.services`` and
registers the client through ``idp.oidc.registration``; must not import views of other packages.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.demo.commands import demo_cli

    app.cli.add_command(demo_cli)
