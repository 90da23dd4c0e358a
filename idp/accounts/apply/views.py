"""申請帳號 at ``/account/apply`` (R-C2, R-C6): the seed's steps 3–10, one page each.

role → school (county, district, level, school) → confirm the school → name, ID, birthday, captcha →
confirm school, name and masked ID → account name, password, backup e-mail, mobile → confirm →
created. The answers live in the server-side wizard state (``idp.wizard``): back and reload show a
step again, nothing personal is in a URL, and a step reached too early (a bookmark, an expired
state) sends the person to the first missing one. The ID is never kept: the identification step
keeps the person's id and the masked number.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l

from idp.accounts import identify
from idp.accounts.apply import services
from idp.accounts.apply.forms import AccountForm, ConfirmForm, RoleForm
from idp.accounts.views import signed_in_account
from idp.db import commit, rollback
from idp.errors import InvalidField
from idp.forms import field_error, safe_next
from idp.wizard import StepMissing, Wizard

bp = Blueprint("apply", __name__, url_prefix="/apply")

WIZARD = "apply"
SEAL_KEY = "apply.seal"  # the session half of the sealed password (services.seal)

# Each step, its endpoint, and what it needs from the steps before it.
STEPS = ("start", "school", "school_confirm", "person", "check", "details", "confirm")
NEEDS = (("start", "role"), ("school", "school"), ("school_confirm", "school_ok"), ("person", "person"),
         ("check", "person_ok"), ("details", "account"))
LATER = {  # answers that no longer hold when a step's answer changes
    "role": ("school", "school_ok", "person", "birthday", "person_ok", "account", "sealed"),
    "school": ("school_ok", "person", "birthday", "person_ok", "account", "sealed"),
    "person": ("person_ok", "account", "sealed"),
}


def _wizard() -> Wizard:
    return Wizard(WIZARD)


def _require(wizard: Wizard, step: str) -> None:
    """Raise ``StepMissing`` unless every step before ``step`` has its answer."""
    wizard.require(NEEDS[:STEPS.index(step)])


@bp.errorhandler(StepMissing)
def _step_missing(exc: StepMissing) -> Any:
    return redirect(url_for(f".{exc.step}"))


@bp.after_request
def _no_store(resp: Response) -> Response:
    # Pages show a name, a masked ID and a school: never kept by a browser cache or a proxy.
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _page(template: str, status: int = 200, *, step: str | None = None, **context: Any) -> Any:
    """A step's page with the "step n of 7" line and what the steps so far said."""
    step = step or (request.endpoint.rsplit(".", 1)[-1] if request.endpoint else "")
    number = STEPS.index(step) + 1 if step in STEPS else None
    return render_template(f"accounts/apply/{template}", step=number, steps=len(STEPS),
                           state=_wizard().state, role_label=identify.role_label, **context), status




# -- step 1: role ---------------------------------------------------------------------------------
@bp.route("", methods=["GET", "POST"])
def start() -> Any:
    wizard = _wizard()
    if request.method == "GET" and (request.args.get("restart") or "next" in request.args):
        wizard.clear()
        session.pop(SEAL_KEY, None)
        wizard.update(next=safe_next(request.args.get("next")))
        return redirect(url_for(".start"))
    form = RoleForm(data={"role": wizard.get("role")} if request.method == "GET" else None)
    if request.method == "POST":
        if form.validate_on_submit():
            if form.role.data != wizard.get("role"):
                wizard.forget(*LATER["role"])
            wizard.update(role=form.role.data)
            return redirect(url_for(".school"))
        return _page("role.html", 400, form=form)
    return _page("role.html", form=form)


# -- step 2: school -------------------------------------------------------------------------------
@bp.route("/school", methods=["GET", "POST"])
def school() -> Any:
    wizard = _wizard()
    _require(wizard, "school")
    if request.method == "GET":
        form = identify.SchoolForm(data=identify.SchoolForm.data_for(wizard.get("school")))
        form.fill()
        return _page("school.html", form=form)
    form = identify.SchoolForm()
    form.fill()
    if form.validate_on_submit():
        chosen = form.chosen()
        if chosen["school_code"] != (wizard.get("school") or {}).get("school_code"):
            wizard.forget(*LATER["school"])
        wizard.update(school=chosen)
        return redirect(url_for(".school_confirm"))
    progress = form.show_progress()  # without JavaScript: a choice that opened the next list
    if progress is not None:
        return _page("school.html", form=form, progress=progress)
    return _page("school.html", 400, form=form)



# -- step 3: confirm the school ---------------------------------------------------------------------
@bp.route("/school/confirm", methods=["GET", "POST"])
def school_confirm() -> Any:
    wizard = _wizard()
    _require(wizard, "school_confirm")
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        wizard.update(school_ok=True)
        return redirect(url_for(".person"))
    advice = identify.advice_for(wizard.get("school")["school_code"], wizard.get("role"))
    return _page("school_confirm.html", 400 if request.method == "POST" else 200, form=form, advice=advice)


# -- step 4: personal data --------------------------------------------------------------------------
@bp.route("/person", methods=["GET", "POST"])
def person() -> Any:
    wizard = _wizard()
    _require(wizard, "person")
    form = identify.personal_data_form()
    if request.method == "GET" or not form.validate_on_submit():
        return _page("person.html", 400 if request.method == "POST" else 200, form=form)
    school_code, role = wizard.get("school")["school_code"], wizard.get("role")
    wizard.forget(*LATER["person"], "person")
    try:
        found = services.identify_applicant(school_code=school_code, role=role, name=form.name.data,
                                            national_id=form.parsed_id, birthday=form.birthday.data,
                                            ip=request.remote_addr)
    except identify.NoPersonalData:
        commit()  # the refusal's audit row
        return _page("no_data.html", 404, advice=identify.advice_for(school_code, role))
    except (services.AlreadyHasAccount, services.AccountIsDisabled) as exc:
        commit()
        return _answer(exc)
    commit()
    wizard.update(person=found.as_state(), birthday=form.birthday.data.isoformat())
    return redirect(url_for(".check"))


def _answer(exc: Any) -> Any:
    """The seed's answer for a person who already has an account: 忘記密碼, or 啟用帳號 (R-C6)."""
    template = "exists.html" if isinstance(exc, services.AlreadyHasAccount) else "disabled.html"
    return _page(template, exc.status, username=exc.data.get("username"), reason=exc.data.get("reason"))


# -- step 5: confirm school, name and masked ID -----------------------------------------------------
@bp.route("/check", methods=["GET", "POST"])
def check() -> Any:
    wizard = _wizard()
    _require(wizard, "check")
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        wizard.update(person_ok=True)
        return redirect(url_for(".details"))
    return _page("check.html", 400 if request.method == "POST" else 200, form=form)


# -- step 6: account name, password, backup e-mail and mobile ---------------------------------------
@bp.route("/details", methods=["GET", "POST"])
def details() -> Any:
    wizard = _wizard()
    _require(wizard, "details")
    if request.method == "GET":
        return _page("details.html", form=AccountForm(data=wizard.get("account")))
    form = AccountForm()
    if form.validate_on_submit():
        try:
            username = services.check_choice(person_id=wizard.get("person")["person_id"],
                                             username=form.username.data, password=form.password.data,
                                             birthday=_birthday(wizard))
        except InvalidField as exc:
            field_error(form, exc)
        else:
            sealed, key = services.seal(form.password.data)
            session[SEAL_KEY] = key
            wizard.update(account={"username": username, "email": form.email.data or "",
                                   "mobile": form.mobile.data or ""}, sealed=sealed)
            return redirect(url_for(".confirm"))
    return _page("details.html", 400, form=form)


def _birthday(wizard: Wizard) -> dt.date | None:
    raw = wizard.get("birthday")
    return dt.date.fromisoformat(raw) if raw else None


# -- step 7: confirm and create -----------------------------------------------------------------------
@bp.route("/confirm", methods=["GET", "POST"])
def confirm() -> Any:
    wizard = _wizard()
    _require(wizard, "confirm")
    form = ConfirmForm()
    if request.method == "GET":
        return _page("confirm.html", form=form)
    if not form.validate_on_submit():
        return _page("confirm.html", 400, form=form)
    password = services.unseal(wizard.get("sealed"), session.get(SEAL_KEY))
    chosen = wizard.get("account")
    if password is None:
        flash(_l("For your safety the password is kept only a short while. Please type it again."), "info")
        wizard.forget("sealed")
        return redirect(url_for(".details"))
    try:
        account = services.create(person_id=wizard.get("person")["person_id"],
                                  school_code=wizard.get("school")["school_code"], role=wizard.get("role"),
                                  username=chosen["username"], password=password, email=chosen["email"],
                                  mobile=chosen["mobile"], birthday=_birthday(wizard))
    except (services.AlreadyHasAccount, services.AccountIsDisabled) as exc:
        commit()
        return _answer(exc)
    except InvalidField as exc:  # the name was taken meanwhile (or the school no longer lists the person)
        rollback()  # whatever was flushed before the refusal
        if exc.field == "school":  # the source ended the affiliation meanwhile: choose the school again
            wizard.forget(*LATER["school"])
            flash(exc.message, "error")
            return redirect(url_for(".school"))
        details_form = AccountForm(formdata=None, data=chosen)
        field_error(details_form, exc)
        return _page("details.html", exc.status, step="details", form=details_form)
    commit()
    next_url = wizard.get("next")
    wizard.clear()
    session.pop(SEAL_KEY, None)
    wizard.update(done=account.username, next=next_url)
    return redirect(url_for(".done"))


# -- step 8: ready ------------------------------------------------------------------------------------
@bp.get("/done")
def done() -> Any:
    wizard = _wizard()
    if not wizard.get("done"):
        return redirect(url_for(".start"))
    # The new account's name is filled in; on a shared computer where someone else is still signed
    # in, the login page asks anyway (force) with an empty slate (switch) rather than carry on as them.
    params = {"next": wizard.get("next") or "/", "login_hint": wizard.get("done")}
    if signed_in_account() is not None:
        params.update(force="1", switch="1")
    return _page("done.html", username=wizard.get("done"), login_url=url_for("login.login", **params))
