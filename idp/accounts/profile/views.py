"""The person's home at ``/account/`` and their backup contacts and password (R-C7, R-L1, issue 10 item 8).

Every page needs a signed-in account (else the login page, then back). Views are thin: bind the form,
call one service, commit, then redirect or render. Which contact change is waiting for its code (the
challenge id) lives in the server-side wizard state, not in the URL or a cookie.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from idp.accounts.profile import services
from idp.accounts.profile.forms import CodeForm, EmailForm, MobileForm, PasswordForm, UsernameForm
from idp.accounts.views import login_redirect, signed_in_account
from idp.db import commit
from idp.errors import InvalidField
from idp.forms import field_error
from idp.security import otp
from idp.wizard import Wizard

bp = Blueprint("profile", __name__)

FORMS = {"email": EmailForm, "mobile": MobileForm}


@bp.before_request
def _signed_in() -> Any:
    if signed_in_account() is None:
        return login_redirect()
    return None


@bp.after_request
def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"  # names, addresses, schools: never in a shared cache
    return resp



@bp.get("/")
def home() -> Any:
    account = signed_in_account()
    return render_template("accounts/profile/home.html", home=services.home(account))


def _channel(channel: str) -> str:
    if channel not in FORMS:
        abort(404)
    return channel


def _wizard(channel: str) -> Wizard:
    return Wizard(f"contact.{channel}")


@bp.route("/contact/<channel>", methods=["GET", "POST"])
def contact(channel: str) -> Any:
    """Step 1: the new address or number; a code is sent to it."""
    channel = _channel(channel)
    form = FORMS[channel]()
    if form.validate_on_submit():
        try:
            challenge = services.start_contact_change(signed_in_account(), channel, form.value.data)
        except InvalidField as exc:
            field_error(form, exc)
        else:
            _wizard(channel).update(challenge=challenge.id, sent_to=challenge.masked_target)
            commit()  # the otp.sent audit row
            return redirect(url_for(".verify", channel=channel))
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/profile/contact.html", form=form, channel=channel), status


@bp.route("/contact/<channel>/verify", methods=["GET", "POST"])
def verify(channel: str) -> Any:
    """Step 2: the code typed back; the address is stored as verified."""
    channel = _channel(channel)
    wizard = _wizard(channel)
    if not wizard.get("challenge"):
        return redirect(url_for(".contact", channel=channel))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            services.finish_contact_change(signed_in_account(), channel, wizard.get("challenge"), form.code.data)
        except (otp.WrongCode, otp.Expired) as exc:
            commit()  # the otp.failed row is kept
            field_error(form, exc)
        else:
            wizard.clear()
            commit()
            flash(_l("Your backup e-mail is verified.") if channel == "email" else
                  _l("Your mobile number is verified."), "info")
            return redirect(url_for(".home"))
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/profile/verify.html", form=form, channel=channel,
                           sent_to=wizard.get("sent_to")), status


@bp.post("/contact/<channel>/verify/cancel")
def cancel(channel: str) -> Any:
    _wizard(_channel(channel)).clear()
    return redirect(url_for(".home"))


@bp.route("/password", methods=["GET", "POST"])
def password() -> Any:
    form = PasswordForm()
    first = not signed_in_account().password_hash
    if first:  # no password yet (a county-made account): nothing to confirm
        del form.current
    if form.validate_on_submit():
        try:
            services.change_password(signed_in_account(), "" if first else form.current.data, form.new.data,
                                     request.remote_addr)
        except InvalidField as exc:
            commit()  # a wrong current password is audited
            field_error(form, exc)
        else:
            commit()
            flash(_l("Your password has been changed."), "info")
            return redirect(url_for(".home"))
    form.new.data = form.again.data = ""
    if not first:
        form.current.data = ""
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/profile/password.html", form=form, first=first,
                           username=signed_in_account().username), status


@bp.route("/username", methods=["GET", "POST"])
def username() -> Any:
    """Choose another account name (the old one is never given to anyone else)."""
    from idp.accounts import services as accounts

    account = signed_in_account()
    form = UsernameForm()
    if form.validate_on_submit():
        try:
            accounts.rename(account, form.username.data, account.username)
        except InvalidField as exc:
            field_error(form, exc)
        else:
            commit()
            flash(_l("Your account name is now %(name)s.", name=account.username), "info")
            return redirect(url_for(".home"))
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/profile/username.html", form=form, current=account.username), status
