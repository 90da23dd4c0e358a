"""The hosted login page and the SSO session (R-L1, R-L4).

Owns: the login/home/logout pages and ``sessions`` (the SSO session every other package reads).
Reads accounts through ``idp.accounts.services``; must not import ``idp.oidc`` views.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.accounts import signals
    from idp.login.sessions import bind_form_session, current_account, mark_form_session, sign_out_everywhere
    from idp.login.views import bp, first_page_for

    app.register_blueprint(bp)
    # The form session must be bound to the SSO session BEFORE Flask-WTF checks a token, and
    # CSRFProtect registered its check when the extensions were bound: go first.
    app.before_request_funcs.setdefault(None, []).insert(0, bind_form_session)
    app.after_request(mark_form_session)
    # The locale selector and templates ask for the signed-in account lazily, through this.
    app.extensions["idp.current_account"] = current_account
    # An authorization request without a session answers with the login page itself (idp.oidc).
    app.extensions["idp.login_page"] = first_page_for
    # A password reset (or an operator disabling the account) signs the account out everywhere.
    signals.password_reset.connect(sign_out_everywhere, weak=False)
    signals.account_disabled.connect(sign_out_everywhere, weak=False)
