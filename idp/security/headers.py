"""Response headers every page gets (R-N3): a strict CSP, no framing, no sniffing."""

from __future__ import annotations

from flask import Flask, Response

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self' {form_targets}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def init_app(app: Flask) -> None:
    @app.after_request
    def _headers(resp: Response) -> Response:
        # Redirects after a form post go to relying parties; CSP form-action covers the redirect chain,
        # so allow http(s) targets there; everything else stays 'self'.
        resp.headers.setdefault("Content-Security-Policy", CSP.format(form_targets="https: http:"))
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp
