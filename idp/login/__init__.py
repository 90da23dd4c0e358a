"""The hosted login page and the SSO session (R-L1, R-L4).

Owns: the login/home/logout pages and ``sessions`` (the SSO session every other package reads).
Reads accounts through ``idp.accounts.services``; must not import ``idp.oidc`` views.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.login.sessions import current_account
    from idp.login.views import bp

    app.register_blueprint(bp)
    # The locale selector and templates ask for the signed-in account lazily, through this.
    app.extensions["idp.current_account"] = current_account
