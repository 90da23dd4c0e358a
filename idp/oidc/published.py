"""The provider's public documents served before Flask (issue 2 item 15, R-N1).

Discovery and the JWKS are the requests every relying party and every resource server makes,
over and over: they are public, identical for everyone, and change only when the settings do
(restart) or a key is rotated or leaves its retention window (the key store notices both).
Building a Flask request context, session, locale and CSRF machinery for them costs several
times more than the answer, so this small WSGI layer answers them from prepared bytes, with
the headers the Flask views would have set, plus an ``ETag`` so caches can revalidate cheaply.
Anything else, including other methods on these paths, goes on to Flask unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from idp.security.headers import fixed_headers

_HEAD_AND_GET = ("GET", "HEAD")


class PublishedDocuments:
    """WSGI middleware: ``GET``/``HEAD`` of discovery and JWKS from memory."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        keys = app.extensions["idp.keys"]
        self.routes: dict[str, tuple[Callable[[], bytes], int]] = {
            "/.well-known/openid-configuration": (self._discovery, 300),
            "/oauth/jwks": (keys.jwks_json, 60),
            "/oidc/v1/jwksets": (keys.jwks_json, 60),  # the ministry's path (issue 2 item 7)
        }
        self._fixed_headers = fixed_headers(app.extensions["idp.settings"].issuer.startswith("https://"))
        self._discovery_body: bytes | None = None
        self._etags: dict[bytes, str] = {}

    def _discovery(self) -> bytes:
        if self._discovery_body is None:
            from idp.oidc import discovery

            with self.app.app_context():
                self._discovery_body = discovery.document_json()
        return self._discovery_body

    def _etag(self, body: bytes) -> str:
        tag = self._etags.get(body)
        if tag is None:
            if len(self._etags) > 8:  # old JWKS versions: keep only the recent ones
                self._etags.clear()
            tag = self._etags[body] = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return tag

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        route = self.routes.get(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD")
        if route is None or method not in _HEAD_AND_GET:
            return self.wsgi_app(environ, start_response)
        build, max_age = route
        body = build()
        etag = self._etag(body)
        headers = [
            ("Content-Type", "application/json"),
            ("Cache-Control", f"public, max-age={max_age}"),
            ("Access-Control-Allow-Origin", "*"),
            ("ETag", etag),
            *self._fixed_headers,
        ]
        if etag in (environ.get("HTTP_IF_NONE_MATCH") or ""):
            start_response("304 Not Modified", headers)
            return []
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [] if method == "HEAD" else [body]
