"""The token endpoint, answered without Flask's dispatch (issue 11: tokens as cheap as the fastest provider).

Every relying party's server calls ``POST /oauth/token`` once per sign-in and per refresh, and
resource-owning apps call it for ``client_credentials`` over and over. Authlib does the work (the
grants, client authentication, PKCE, the ID token); around it Flask's full dispatch ran a dozen
hooks that have nothing to do on a JSON API (the form session, CSRF, locale selection, the county
logout target, the security headers' checks for pages, signals), built a second request wrapper and
a response object, and cost about a third of the request. This WSGI layer, like
``published.PublishedDocuments`` before it, takes ``POST`` on the token paths and:

- pushes a real request context (so everything Authlib and our hooks read, ``flask.request``,
  ``current_app``, the database session, the store, is what a view would see) and calls the view,
  ``views.token``, itself: Authlib's ``create_token_response``, then the commit at the one
  transaction edge (``idp.db.commit``);
- answers with the headers the full dispatch added (the CSP and the fixed security headers) beside
  the view's own (``no-store``, ``Pragma``, Authlib's ``WWW-Authenticate`` on a failed client
  authentication);
- hands any exception to the app's own error handlers (``idp.errors``: a store or database outage
  is a 503 with ``Retry-After``, anything else a JSON 500, never a traceback), with the work rolled
  back, and finishes that answer the way Flask would (``process_response``).

Other methods on these paths go on to Flask's dispatch (``405``); so does every other path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from idp.security.headers import fixed_headers
from idp.serving import NO_ROUTING

PATHS = frozenset({"/oauth/token", "/oidc/v1/token"})


class TokenEndpoint:
    """WSGI middleware: ``POST`` to the token paths through Authlib, without Flask's dispatch."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._fixed_headers = fixed_headers(app.extensions["idp.settings"].issuer.startswith("https://"))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in PATHS:
            return self.wsgi_app(environ, start_response)
        from idp.db import rollback

        app = self.app
        environ[NO_ROUTING] = True  # the view is called below: no URL map to bind and match
        ctx = app.request_context(environ)
        ctx.push()
        try:
            try:
                response = app.view_functions["oidc.token"]()  # the view: Authlib, then the commit
            except Exception as exc:  # as Flask's dispatch would: the app's handlers answer (idp.errors)
                rollback()
                answer = app.process_response(app.make_response(app.handle_user_exception(exc)))
                return answer(environ, start_response)
            body = response.get_data()
            headers = [(k, v) for k, v in response.headers.items() if k != "Content-Length"]
            headers.extend(self._fixed_headers)
            headers.append(("Content-Length", str(len(body))))
            start_response(response.status, headers)
            return [body]
        finally:
            ctx.pop()
