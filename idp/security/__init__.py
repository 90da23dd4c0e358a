"""Security cross-cutting concerns (R-N3): audit trail, response headers, rate limits, lockout.

Owns: ``audit``, ``captcha``, ``headers``, ``ratelimit``. Must not import feature packages.
"""

from __future__ import annotations

from flask import Flask

from idp.security import captcha, headers, models, ratelimit  # noqa: F401  (models registers the audit table)


def init_app(app: Flask) -> None:
    headers.init_app(app)
    ratelimit.init_app(app)
    captcha.init_app(app)
