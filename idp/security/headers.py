"""Response headers every page gets (R-N3): a strict CSP, no framing, no sniffing, HSTS on https.

CSP ``form-action`` also governs the redirects that follow a form post (a sign-in or a consent
ends in a redirect to the relying party), so it cannot simply be ``'self'``; but it must not be
"any http(s) site" either, or an injected form could post a pupil's password anywhere. Each
page that posts to something which will redirect elsewhere names that origin with
``allow_form_target`` (the registered redirect URI of the app being signed in to, a registered
post-logout URI); every other page allows only this origin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'{form_targets}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
HSTS = "max-age=31536000"


def csp(form_targets: set[str] | frozenset[str] = frozenset()) -> str:
    return CSP.format(form_targets="".join(f" {t}" for t in sorted(form_targets)))


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in parts.netloc for c in " ;,'\""):
        return None
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def allow_form_target(url: str) -> None:
    """Let this response's forms lead (through redirects) to ``url``'s origin. Only registered
    URLs may be passed: the caller has checked them against the client's registration."""
    origin = origin_of(url)
    if origin:  # on the request, not flask.g: a test's app context may span several requests
        vars(request._get_current_object()).setdefault("_idp_form_targets", set()).add(origin)  # type: ignore[attr-defined]


def static_headers(https: bool) -> list[tuple[str, str]]:
    """The headers that do not depend on the request (also sent by ``oidc.published``)."""
    headers = [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
               ("Referrer-Policy", "no-referrer")]
    if https:
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


def init_app(app: Flask) -> None:
    fixed = static_headers(app.extensions["idp.settings"].issuer.startswith("https://"))

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("Content-Security-Policy", csp(getattr(request, "_idp_form_targets", frozenset())))
        for name, value in fixed:
            resp.headers.setdefault(name, value)
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp
