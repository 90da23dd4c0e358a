"""Hosted login, home and logout pages (R-L1, R-L4)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request, url_for

from idp.accounts import services as accounts
from idp.db import commit
from idp.errors import IdpError
from idp.extensions import settings
from idp.login import sessions
from idp.login.forms import LoginForm, LogoutForm
from idp.security import audit, devices
from idp.security.headers import allow_form_target

bp = Blueprint("login", __name__)


def _allow_next_target(next_url: str) -> None:
    """The login form's post ends, through ``next``, at the app being signed in to: CSP form-action
    must allow that app's registered redirect origin (and only it)."""
    target = current_app.extensions.get("idp.redirect_target_of")
    uri = target(next_url) if target is not None else None
    if uri:
        allow_form_target(uri)


def _device_cookie() -> str:
    return settings().cookie_name(devices.COOKIE)


def _remember_device(resp: Response, account: Any) -> Response:
    s = settings()
    value = devices.remember(request.cookies.get(_device_cookie()), account.username)
    resp.set_cookie(_device_cookie(), value, max_age=s.device_cookie_lifetime, path="/", secure=s.secure_cookies,
                    httponly=True, samesite="Lax")
    return resp


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    next_url = sessions.safe_next(request.values.get("next"))
    force = request.values.get("force") == "1"
    switch = request.values.get("switch") == "1"
    sso = sessions.current_session()
    _allow_next_target(next_url)
    if request.method == "GET":
        if sso is not None and not force and sessions.current_account() is not None:
            return redirect(next_url)
        form.next.data = next_url
        form.force.data = "1" if force else ""
        if request.args.get("login_hint"):
            form.username.data = request.args["login_hint"][:64]
        elif force and not switch and sessions.current_account() is not None:
            # Re-authentication (prompt=login, max_age): the same person confirms the password.
            form.username.data = sessions.current_account().username
        return render_template("login/login.html", form=form)
    if not form.validate_on_submit():
        return render_template("login/login.html", form=form), 400
    try:
        account = accounts.authenticate(form.username.data, form.password.data, request.remote_addr,
                                        request.cookies.get(_device_cookie()))
    except IdpError as exc:
        if exc.status >= 500:
            raise
        commit()  # the failure's audit rows
        headers = {"Retry-After": str(exc.data["retry_after"])} if "retry_after" in exc.data else {}
        form.password.data = ""
        return render_template("login/login.html", form=form, error=exc.message), exc.status, headers
    sessions.start_session(account)
    commit()
    return _remember_device(make_response(redirect(next_url)), account)


@bp.get("/")
def home() -> Any:
    account = sessions.current_account()
    if account is None:
        return render_template("login/login.html", form=LoginForm(formdata=None, next="/"))
    return render_template("login/home.html", account=account, form=LogoutForm())


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Any:
    form = LogoutForm()
    sso = sessions.current_session()
    if request.method == "POST" and form.validate_on_submit():
        if sso is not None:
            account = sessions.current_account()
            sessions.end_session(sso.sid)
            audit.record(audit.LOGOUT, actor=account.username if account else None)
            commit()
        return render_template("login/logged_out.html")
    if sso is None:
        return redirect(url_for("login.home"))
    return render_template("login/logout.html", form=form)
