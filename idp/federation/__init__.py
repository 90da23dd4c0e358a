"""County identity providers: sign in with a county account (使用縣市帳號登入, R-L2, issue 12).

Owns: the county providers' configuration (``federation_file``, checked at start-up), one OpenID
Connect relying-party client per county (``client.py``, built per app and kept in
``app.extensions["idp.federation"]``), the federated links (county subject → person), the pages under
``/login/county/`` and the county list on the login page (``idp.county_logins``, which the login view asks).
Uses identity, accounts and schools through their services and ``login.sessions`` for the SSO
session; the console's county page (``idp.admin.counties``) is a view over ``services``.
Must not import other packages' views.

Logout: this package listens to ``login.sessions.session_ended``. When a logout page (ours or the
relying parties' end-session endpoint) ends a session that began at a county, the response goes on
through the county's end-session endpoint (and back), or, for a county without one, to a page that
says the county's own session may still be open.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, after_this_request, has_request_context, request, url_for

# Endpoints whose answer is "you are signed out": only there does a county logout follow.
LOGOUT_ENDPOINTS = frozenset({"login.logout", "oidc.end_session"})


def _is_logout_request() -> bool:
    endpoint = request.endpoint or ""
    return endpoint in LOGOUT_ENDPOINTS or endpoint.endswith(("logout", "logout_to_go"))


def init_app(app: Flask) -> None:
    from idp.federation import models  # noqa: F401
    from idp.federation.client import Federation
    from idp.federation.config import load_file
    from idp.federation.views import bp
    from idp.login.sessions import session_ended

    s = app.extensions["idp.settings"]
    providers = load_file(s.federation_file, production=s.is_production)
    app.extensions["idp.federation"] = Federation(providers, our_issuer=s.issuer, timeout=s.federation_timeout,
                                                  metadata_ttl=s.federation_metadata_ttl,
                                                  production=s.is_production)
    app.register_blueprint(bp)
    session_ended.connect(_on_session_ended, weak=False)
    app.before_request(_allow_county_logout_target)
    app.extensions["idp.county_logins"] = _county_logins_for  # the login page's county area (idp.login.views)


def _county_logins_for(next_url: str | None = "/") -> list[Any]:
    """For the login page's county area (templates/login/login.html)."""
    from flask import current_app
    from flask_babel import get_locale

    from idp.federation import services
    from idp.forms import safe_next

    if not len(current_app.extensions["idp.federation"]):
        return []
    locale = get_locale()
    ui = "en" if locale is not None and locale.language == "en" else None
    return services.counties(safe_next(next_url, "/") or "/", ui)


def _allow_county_logout_target() -> None:
    """A logout form of a county sign-in will be redirected to the county: CSP form-action must allow it."""
    from flask import current_app

    if not len(current_app.extensions["idp.federation"]) or not _is_logout_request():
        return
    from idp.federation import services
    from idp.login import sessions
    from idp.security.headers import allow_form_target

    sso = sessions.current_session()
    data = services.session_county(sso.public_sid) if sso is not None else None
    client = services.federation().get(data["county"]) if data else None
    endpoint = client.end_session_endpoint() if client is not None else None
    if endpoint:
        allow_form_target(endpoint)


def _on_session_ended(sender: Any, **_: Any) -> None:
    """A session ended: forget its county record; on a logout page, pass the browser through the county."""
    from flask import current_app

    if not has_request_context() or "idp.federation" not in current_app.extensions:
        return
    if not len(current_app.extensions["idp.federation"]):
        return
    from idp.federation import services

    data = services.forget_session(str(sender))
    if data is None or not _is_logout_request():
        return
    client = services.federation().get(data.get("county", ""))
    if client is None:
        return

    @after_this_request
    def _through_the_county(resp: Response) -> Response:
        from idp.login import sessions

        if sessions.current_session() is not None:  # someone signed in after all: not a logout
            return resp
        if resp.status_code in (301, 302, 303):
            then = resp.headers.get("Location")
        elif resp.status_code == 200:
            then = None
        else:
            return resp
        key = services.logout_continuation(client.name, then)
        url = client.end_session_url(id_token_hint=data.get("id_token"), state=key) or \
            url_for("federation.signed_out", name=client.name, state=key)
        # The same response object, so the cookies already set on it (the SSO cookie's removal) stay.
        resp.status_code = 302
        resp.headers["Location"] = url
        resp.set_data(b"")
        return resp
