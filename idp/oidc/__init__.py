"""TODO docstring: what idp.oidc owns and must not import."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.oidc import models  # noqa: F401
