"""Small pieces every page with a form shares (DESIGN rule 4: views bind a form, call a service, show
its refusal): where a service's refusal goes, where a page may send a person next, and how fast a
form's fields become HTML."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flask import flash
from markupsafe import Markup, escape

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
            or _CONTROL.search(value):
        return default
    return value


_CONTROL = re.compile(r"[\x00-\x1f]")


def html_params(**kwargs: Any) -> Markup:
    """WTForms' ``html_params``, the same output for the same arguments, without its per-attribute
    ``Markup.format`` (Python-level string formatting and escaping): rendering the login page's four
    inputs took a quarter of the page's time (issue 11). Attributes sorted by name; ``True`` is a bare
    attribute, ``False`` none; ``class_`` → ``class``; ``data_``/``aria_`` underscores → hyphens; names
    and values escaped, double quotes in a ``Markup`` value too."""
    params = []
    for key, value in sorted(kwargs.items()):
        key = key.rstrip("_")
        if key.startswith(("data_", "aria_")):
            key = key.replace("_", "-")
        if value is True:
            params.append(str(escape(key)))
        elif value is not False:
            params.append(f'{escape(key)}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return Markup(" ".join(params))  # noqa: S704 - every name and value above went through escape()


wtforms_html_params: Any = None  # WTForms' own, once ``install_html_params`` has replaced it


def install_html_params() -> None:
    """Make every WTForms widget (and label) use ``html_params`` above. Idempotent; the process's forms
    render the same HTML as before, faster."""
    import wtforms.widgets
    import wtforms.widgets.core as core

    global wtforms_html_params
    if wtforms_html_params is None:
        wtforms_html_params = core.html_params  # kept: the reference the tests compare with
    core.html_params = html_params  # the widgets that call the module's function
    wtforms.widgets.html_params = html_params  # Label, through the package
    for widget in (core.Input, core.Button):  # the widgets that call it as a static method
        widget.html_params = staticmethod(html_params)  # type: ignore[assignment]
