"""The OpenID Connect provider (R-O1, R-O2, R-L4 consent, issue 2 items 4–7).

Owns: the Authlib authorization server (built per app in ``server.py``), grants, the scope →
claims table, subject identifiers, signing keys and their CLI, the consent page and the
authorised-apps page, RP-initiated and back-channel logout. Reads accounts only through
``idp.accounts.services`` and SSO sessions only through ``idp.login.sessions``; must not import
views of other packages.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask


def _keys_dir(configured: str) -> Path:
    path = Path(configured)
    return path if path.is_absolute() else Path(__file__).resolve().parents[2] / path


def init_app(app: Flask) -> None:
    from idp.oidc import logout, models, server  # noqa: F401
    from idp.oidc.commands import keys_cli
    from idp.oidc.keys import KeyStore
    from idp.oidc.published import PublishedDocuments
    from idp.oidc.token_endpoint import TokenEndpoint
    from idp.oidc.views import bp, continue_after_sign_in

    settings = app.extensions["idp.settings"]
    # Retired keys stay published while any JWT they signed can still be presented.
    retention = max(settings.id_token_lifetime, settings.access_token_lifetime)
    keys = KeyStore(_keys_dir(settings.keys_dir), retention)
    keys.ensure()
    app.extensions["idp.keys"] = keys
    server.build(app)
    from idp.oidc.services import redirect_target_of

    app.extensions["idp.redirect_target_of"] = redirect_target_of  # read by the login page's CSP
    app.extensions["idp.continue_after_sign_in"] = continue_after_sign_in  # the login POST's answer
    logout.init_app(app)
    app.register_blueprint(bp)
    app.cli.add_command(keys_cli)
    app.wsgi_app = TokenEndpoint(app, app.wsgi_app)  # type: ignore[method-assign]
    app.wsgi_app = PublishedDocuments(app, app.wsgi_app)  # type: ignore[method-assign]
