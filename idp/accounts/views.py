"""The self-service pages under ``/account`` (R-C, R-A1): one parent blueprint, one nested blueprint per
flow (``apply``, ``recover``, ``profile``, ``members``), each in its own sub-package with its own
forms, services and views.

Pages read the signed-in account through the hook the login package registers
(``app.extensions["idp.current_account"]``), so this package never imports ``idp.login``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, request, url_for

bp = Blueprint("accounts", __name__, url_prefix="/account")


def signed_in_account() -> Any:
    """The signed-in, active account of this request, or None."""
    loader = current_app.extensions.get("idp.current_account")
    return loader() if loader is not None else None


def login_redirect() -> Any:
    """Send the person to sign in, then back here (same-origin path only)."""
    path = request.full_path if request.query_string else request.path
    return redirect(url_for("login.login", next=path))


def child_blueprints() -> list[Blueprint]:
    """The flows' blueprints, nested under /account (each sub-package exposes ``bp``)."""
    import importlib

    found = []
    for name in ("apply", "recover", "profile", "members"):
        try:
            module = importlib.import_module(f"idp.accounts.{name}.views")
        except ModuleNotFoundError as exc:  # a flow not built yet
            if exc.name != f"idp.accounts.{name}" and exc.name != f"idp.accounts.{name}.views":
                raise
            continue
        found.append(module.bp)
    return found


# Nested once, when this module is first imported (a blueprint cannot change after its first use).
for _child in child_blueprints():
    bp.register_blueprint(_child)
