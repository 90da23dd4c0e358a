"""TODO docstring: what idp.login owns and must not import."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    pass
