"""TODO docstring: what idp.accounts owns and must not import."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.accounts import models  # noqa: F401
