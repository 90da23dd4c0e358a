"""一般會員註冊 at ``/account/join`` (R-A1): e-mail → the code sent to it → account name and password → done.

One page per step; what the steps said lives in the server-side wizard state (``idp.wizard``), so
back and reload show a step again and no address or code is ever in a URL. A step reached too early
(a bookmark, an expired state) sends the person to the first step that is missing. The last page
offers to sign in, returning to where the login page was going (its ``next``) when the sign-up
started there.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import get_locale

from idp.accounts.members import services
from idp.accounts.members.forms import AccountForm, CodeForm, EmailForm
from idp.accounts.views import signed_in_account
from idp.db import commit
from idp.errors import InvalidField, RateLimited
from idp.forms import field_error, safe_next
from idp.security import otp
from idp.wizard import StepMissing, Wizard

bp = Blueprint("members", __name__, url_prefix="/join")

WIZARD = "members"
STEPS = ("start", "code", "account")


def _wizard() -> Wizard:
    return Wizard(WIZARD)


@bp.errorhandler(StepMissing)
def _step_missing(exc: StepMissing) -> Any:
    return redirect(url_for(f".{exc.step}"))


@bp.after_request
def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"  # an address, an account name: never in a shared cache
    return resp



def _login_url() -> str:
    """The login page, going on to where it was going when the sign-up started there. If someone is
    signed in on this browser (a shared computer), the page still asks: the new member signs in."""
    params = {"next": _wizard().get("next")} if _wizard().get("next") else {}
    if signed_in_account() is not None:
        params.update(force="1", switch="1")
    return url_for("login.login", **params)


def _page(template: str, status: int = 200, **context: Any) -> Any:
    step = request.endpoint.rsplit(".", 1)[-1] if request.endpoint else ""
    number = STEPS.index(step) + 1 if step in STEPS else None
    context.setdefault("login_url", _login_url())
    return render_template(f"accounts/members/{template}", step=number, steps=len(STEPS), **context), status



# -- step 1: the e-mail address ---------------------------------------------------------------------
@bp.route("", methods=["GET", "POST"])
def start() -> Any:
    wizard = _wizard()
    if request.method == "GET" and ("next" in request.args or wizard.get("done")):
        # A new sign-up (from the login page, or after one finished): nothing of an earlier one is kept.
        next_url = safe_next(request.args.get("next")) if "next" in request.args else wizard.get("next")
        wizard.clear()
        wizard.update(next=next_url)
        return redirect(url_for(".start"))
    form = EmailForm()
    if request.method == "GET":
        return _page("email.html", form=form, sent_to=wizard.get("sent_to"))
    if form.validate_on_submit():
        locale = get_locale()
        try:
            challenge = services.send_code(form.email.data, locale=str(locale) if locale else None)
        except (InvalidField, RateLimited) as exc:
            form.email.errors = [*form.email.errors, exc.message]
            headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}
            return (*_page("email.html", exc.status, form=form), headers)
        wizard.forget("email")  # a new address: whatever was proved before no longer holds
        wizard.update(challenge=challenge.id, sent_to=challenge.masked_target)
        commit()  # the otp.sent audit row
        return redirect(url_for(".code"))
    return _page("email.html", 400, form=form)


# -- step 2: the code ------------------------------------------------------------------------------
@bp.route("/code", methods=["GET", "POST"])
def code() -> Any:
    wizard = _wizard()
    if wizard.get("email"):
        return redirect(url_for(".account"))  # proved already (back, reload): go on
    wizard.require([("start", "challenge")])
    form = CodeForm()
    if form.validate_on_submit():
        try:
            email = services.prove_email(wizard.get("challenge"), form.code.data)
        except (otp.WrongCode, otp.Expired) as exc:
            commit()  # the otp.failed row is kept
            field_error(form, exc)
            return _page("code.html", exc.status, form=form, sent_to=wizard.get("sent_to"))
        except otp.TooManyTries as exc:
            commit()
            wizard.forget("challenge")
            flash(exc.message, "error")
            return redirect(url_for(".start"))
        wizard.update(email=email, challenge=None)
        commit()  # the otp.verified row
        return redirect(url_for(".account"))
    status = 400 if request.method == "POST" else 200
    return _page("code.html", status, form=form, sent_to=wizard.get("sent_to"))


# -- step 3: account name and password ---------------------------------------------------------------
@bp.route("/account", methods=["GET", "POST"])
def account() -> Any:
    wizard = _wizard()
    wizard.require([("start", "sent_to"), ("code", "email")])
    form = AccountForm()
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            made = services.create_member(wizard.get("email"), form.username.data, form.password.data,
                                          form.name.data or "")
        except InvalidField as exc:  # a name taken or against the rule, a weak password: nothing stored
            field_error(form, exc)
            status = exc.status
        else:
            next_url = wizard.get("next")
            wizard.clear()
            wizard.update(done=made.username, next=next_url)
            commit()
            return redirect(url_for(".done"))
    form.password.data = form.password_again.data = ""
    return _page("account.html", status, form=form, email=wizard.get("email"))


# -- done ------------------------------------------------------------------------------------------
@bp.get("/done")
def done() -> Any:
    wizard = _wizard()
    wizard.require([("start", "done")])
    return _page("done.html", username=wizard.get("done"))
