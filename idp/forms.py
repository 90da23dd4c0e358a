"""Small pieces every page with a form shares (DESIGN rule 4: views bind a form, call a service, show
its refusal): where a service's refusal goes, and where a page may send a person next."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import flash

from idp.errors import IdpError


def field_error(form: Any, exc: IdpError) -> None:
    """Show a service's refusal beside the field it names (``InvalidField.field``), or at the top of
    the page when it names none the form has."""
    field = getattr(form, getattr(exc, "field", "") or "", None)
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, exc.message]
    else:
        flash(exc.message, "error")


def safe_next(value: str | None, default: str | None = None, *, max_length: int = 2000) -> str | None:
    """A same-origin path to go on to (a ``next`` parameter), else ``default``: never an open redirect
    (no scheme, no host, no ``//`` or ``\\`` tricks, no control characters)."""
    if not value or len(value) > max_length:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") or "\\" in value \
            or any(ord(c) < 32 for c in value):
        return default
    return value
