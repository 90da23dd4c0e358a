"""Domain exceptions and the one place that turns any error into a response (DESIGN rule 9).

People get an HTML page in their language; OAuth/OIDC endpoints get RFC 6749 JSON; nobody
ever gets ``str(exc)`` of an unexpected exception or a stack trace. Bad input is a 4xx with a
message that says what to fix, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from idp.store import StoreUnavailable

log = logging.getLogger(__name__)

# Paths answered with JSON errors: machine clients, not people.
API_PREFIXES = ("/oauth/token", "/oauth/revoke", "/oauth/introspect", "/oauth/userinfo", "/oauth/jwks",
                "/oidc/v1/token", "/oidc/v1/userinfo", "/oidc/v1/jwksets", "/moeresource/", "/api/",
                "/.well-known/")


class IdpError(Exception):
    """A failure with a message fit to show the person who caused it.

    ``message`` is a lazy translatable string; ``status`` the HTTP status; ``code`` a stable
    machine-readable name (also the OAuth ``error`` where one applies).
    """

    status: int = 400
    code: str = "invalid_request"
    message: Any = _l("The request could not be processed.")

    def __init__(self, message: Any = None, *, status: int | None = None, code: str | None = None,
                 **data: Any) -> None:
        super().__init__(code or self.code)
        if message is not None:
            self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.data = data


class InvalidField(IdpError):
    """Input that breaks a rule; ``field`` names the form field to show the message beside."""

    status = 400
    code = "invalid_input"

    def __init__(self, field: str, message: Any, **data: Any) -> None:
        super().__init__(message, field=field, **data)
        self.field = field


class NotFound(IdpError):
    status = 404
    code = "not_found"
    message = _l("The page or item you asked for does not exist.")


class Forbidden(IdpError):
    status = 403
    code = "forbidden"
    message = _l("You are not allowed to do this.")


class RateLimited(IdpError):
    """Too many attempts; ``retry_after`` seconds until the next one is allowed."""

    status = 429
    code = "rate_limited"
    message = _l("Too many attempts. Please wait and try again later.")

    def __init__(self, retry_after: int, message: Any = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class ServiceUnavailable(IdpError):
    status = 503
    code = "temporarily_unavailable"
    message = _l("The service is temporarily unavailable. Please try again in a moment.")


def wants_json() -> bool:
    if request.path.startswith(API_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _respond(status: int, code: str, message: Any, headers: dict[str, str] | None = None):
    if wants_json():
        resp = jsonify(error=code, error_description=str(message))
    else:
        resp = render_template("errors/page.html", status=status, code=code, message=message)
    resp = (resp, status) if isinstance(resp, str) else resp
    if isinstance(resp, tuple):
        from flask import make_response

        resp = make_response(*resp)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _rollback_quietly() -> None:
    from idp.extensions import db

    try:
        db.session.rollback()
    except sa_exc.SQLAlchemyError:
        log.warning("rollback after a database error failed too")


def init_app(app: Flask) -> None:
    @app.errorhandler(IdpError)
    def _idp_error(exc: IdpError):
        _rollback_quietly()  # a flow that failed half-way leaves nothing behind
        headers = None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        elif isinstance(exc, ServiceUnavailable):
            headers = {"Retry-After": "5"}
        return _respond(exc.status, exc.code, exc.message, headers)

    @app.errorhandler(StoreUnavailable)
    def _store_down(exc: StoreUnavailable):
        _rollback_quietly()
        log.error("store unavailable on %s %s: %s", request.method, request.path, exc)
        return _respond(503, ServiceUnavailable.code, ServiceUnavailable.message, {"Retry-After": "5"})

    @app.errorhandler(sa_exc.OperationalError)
    def _database_down(exc: sa_exc.OperationalError):
        # The database went away (restart, failover, network): SQLAlchemy has already thrown the
        # process's pooled connections away, so the next request reconnects. Rather than ping the
        # database before every request (one more round trip each time), the one request that meets
        # the broken connection gets a "try again" that clients and browsers understand.
        log.error("database unavailable on %s %s: %s", request.method, request.path, type(exc.orig).__name__)
        _rollback_quietly()
        return _respond(503, ServiceUnavailable.code, ServiceUnavailable.message, {"Retry-After": "5"})

    @app.errorhandler(sa_exc.DataError)
    def _bad_value(exc: sa_exc.DataError):
        # A value the database cannot hold (a 20-digit id in a URL, say) is the request's fault.
        log.warning("value refused by the database on %s %s: %s", request.method, request.path,
                    type(exc.orig).__name__)
        _rollback_quietly()
        return _respond(400, "invalid_request", _l("The request was not understood. Please check what you entered."))

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        _rollback_quietly()
        return _respond(400, "csrf_failed",
                        _l("Your form expired or was sent from elsewhere. Please go back, reload and try again."))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        messages = {
            400: _l("The request was not understood. Please check what you entered."),
            404: _l("The page you asked for does not exist."),
            405: _l("This page cannot be used that way."),
            413: _l("The upload is too large."),
            429: _l("Too many attempts. Please wait and try again later."),
        }
        _rollback_quietly()
        status = exc.code or 500
        message = messages.get(status, _l("The request could not be processed."))
        return _respond(status, (exc.name or "error").lower().replace(" ", "_"), message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Logged with its traceback for operators; the client sees only a generic page.
        log.exception("unhandled error on %s %s", request.method, request.path)
        _rollback_quietly()
        return _respond(500, "server_error", _l("Something went wrong on our side. Please try again later."))
