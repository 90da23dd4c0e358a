"""The form session's cookie (``idp_session``: locale, CSRF secret, wizard ids) is for people's pages only.

The JSON APIs (token, introspection, revocation, userinfo, the ministry's resources, the school
pickers' data) are called by relying parties' servers and by scripts, never with a form: reading,
verifying and re-signing a session cookie there is work for nothing on the hottest paths, and a
``Set-Cookie`` on an API answer is noise. They get an empty, throw-away session instead.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from idp.errors import API_PREFIXES


class PagesOnlySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, skipped (not read, never saved) on the API paths."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(API_PREFIXES):
            return SecureCookieSession()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        from flask import request

        if request.path.startswith(API_PREFIXES):
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    app.session_interface = PagesOnlySessionInterface()
