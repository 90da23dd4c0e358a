"""The development outbox (``/dev/outbox``): read the mail and texts ``make run`` would have sent.

It shows one-time codes in clear, which is its purpose, so it exists only when ``env`` is
development or testing; anywhere else it answers 404 like any unknown address.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, make_response, render_template

from idp.extensions import settings
from idp.notify import services

bp = Blueprint("notify", __name__)

@bp.get("/dev/outbox")
def outbox() -> Any:
    if settings().env not in ("development", "testing"):
        abort(404)
    resp = make_response(render_template("notify/dev/outbox.html", messages=services.outbox()))
    resp.headers["Cache-Control"] = "no-store"
    return resp
