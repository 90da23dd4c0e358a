"""Response headers every page gets (R-N3): a strict CSP, no framing, no sniffing, HSTS on https.

CSP ``form-action`` also governs the redirects that follow a form post (a sign-in or a consent
ends in a redirect to the relying party), so it cannot simply be ``'self'``; but it must not be
"any http(s) site" either, or an injected form could post a pupil's password anywhere. Each
page that posts to something which will redirect elsewhere names that origin with
``allow_form_target`` (the registered redirect URI of the app being signed in to, a registered
post-logout URI); every other page allows only this origin.

Browsers check ``form-action`` against *every* hop of the redirects that follow a form post, and
the hops after the relying party's redirect URI are the app's own business: an app whose callback
sends the browser on to another of its hosts, or a county's sign-in (a provider like this one)
whose relying party, the national service, sends the browser on to the app the person asked for.
Chromium then blocks the whole navigation. So a browser's form post whose answer is a redirect
that can leave this origin (another origin, or ``/oauth/...``, which redirects to apps) is answered
with a small page that continues there by itself (``continue_page``): that navigation is not a form
submission, so ``form-action`` keeps its protection and no app's redirects are blocked. Scripts
and relying parties' servers (no ``Sec-Fetch-Mode: navigate``) still get the redirect.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, render_template, request

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


def fixed_headers(https: bool) -> list[tuple[str, str]]:
    """The default CSP and the static headers: what the layers answering before Flask's dispatch
    (``oidc.published``, ``oidc.token_endpoint``) add, as the ``after_request`` hook below does."""
    return [("Content-Security-Policy", csp()), *static_headers(https)]


REDIRECTS = (301, 302, 303, 307, 308)


def leaves_this_origin(location: str) -> bool:
    """Can a redirect to ``location`` end outside this origin? (Another origin, or the OAuth
    endpoints, which send the browser on to apps.)"""
    parts = urlsplit(location)
    if parts.netloc and f"{parts.scheme}://{parts.netloc}" != request.host_url.rstrip("/"):
        return True
    return parts.path.startswith("/oauth/")


def continue_page(resp: Response) -> Response:
    """Turn a form post's redirect into a page that continues to the same place (see above),
    keeping every other header (the new session's cookies above all)."""
    target = resp.headers["Location"]
    resp.status_code = 200
    del resp.headers["Location"]
    resp.set_data(render_template("security/continue.html", target=target))
    resp.mimetype = "text/html"
    return resp


def init_app(app: Flask) -> None:
    fixed = static_headers(app.extensions["idp.settings"].issuer.startswith("https://"))

    from idp.errors import API_PREFIXES

    @app.after_request
    def _headers(resp: Response) -> Response:
        if (resp.status_code in REDIRECTS and request.method == "POST"
                and request.headers.get("Sec-Fetch-Mode") == "navigate"
                and not request.path.startswith(API_PREFIXES) and leaves_this_origin(resp.headers.get("Location", ""))):
            resp = continue_page(resp)
        resp.headers.setdefault("Content-Security-Policy", csp(getattr(request, "_idp_form_targets", frozenset())))
        for name, value in fixed:
            resp.headers.setdefault(name, value)
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp
