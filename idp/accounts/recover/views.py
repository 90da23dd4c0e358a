"""帳號管理 at ``/account/recover``: 忘記帳號, 忘記密碼 (personal data or a code), 啟用帳號 (R-C1, R-C4, R-C5).

- ``/account/recover/account``: ID number, birthday, captcha → the account name masked, or "no
  account yet" with a link to apply.
- ``/account/recover/password``: the choice of 使用個人基本資料重設 (``/password/school`` …) and
  使用備用信箱/手機重設 (``/password/code`` …).
- ``/account/recover/activate``: students only; ``/activate/school`` … as the reset.

The personal-data steps are the seed's: school → confirm it → name, ID, birthday, captcha → confirm
account and name and type the new password twice → done. Their answers live in the server-side
wizard state (``idp.wizard``): back and reload show a step again, nothing personal goes into a URL,
a step reached too early sends the person to the first missing one. Views are thin: bind the
form, call one service, commit once, then render or redirect.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, session, url_for

from idp.accounts import identify
from idp.accounts.recover import services
from idp.accounts.recover.forms import (
    CodeForm,
    ConfirmForm,
    NewPasswordForm,
    code_request_form,
    forgot_account_form,
)
from idp.db import commit
from idp.errors import InvalidField
from idp.extensions import settings
from idp.forms import field_error, safe_next
from idp.security import otp
from idp.wizard import StepMissing, Wizard

bp = Blueprint("recover", __name__, url_prefix="/recover")

FLOW = "<any(password, activate):flow>"
NEXT_KEY = "recover.next"  # where to go after signing in again (the login page's ``next``)

# The personal-data steps, and what each needs from the steps before it.
STEPS = ("school", "school_confirm", "person", "new_password")
NEEDS = (("school", "school"), ("school_confirm", "school_ok"), ("person", "person"))
LATER = {  # answers that no longer hold when a step's answer changes
    "school": ("school_ok", "person", "birthday"),
    "person": ("person", "birthday"),
}
CODE_NEEDS = (("code", "token"), ("code_enter", "account_id"))


def _wizard(flow: str) -> Wizard:
    return Wizard(f"recover.{flow}")


@bp.errorhandler(StepMissing)
def _step_missing(exc: StepMissing) -> Any:
    flow = (request.view_args or {}).get("flow")
    return redirect(url_for(f".{exc.step}", **({"flow": flow} if flow and exc.step in STEPS else {})))


@bp.after_request
def _no_store(resp: Response) -> Response:
    # Pages show a name, a masked ID, an account name: never kept by a browser cache or a proxy.
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.before_request
def _remember_next() -> None:
    """Keep the login page's ``next`` (a same-origin path) for the "sign in" link at the end."""
    value = request.args.get("next")
    if request.method == "GET" and value:
        safe = safe_next(value)
        if safe:
            session[NEXT_KEY] = safe



def _login_url() -> str:
    return url_for("login.login", next=session.get(NEXT_KEY) or "/")


def _page(template: str, status: int = 200, **context: Any) -> Any:
    return render_template(f"accounts/recover/{template}", **context), status


def _step_page(template: str, flow: str, status: int = 200, **context: Any) -> Any:
    step = request.endpoint.rsplit(".", 1)[-1] if request.endpoint else ""
    number = STEPS.index(step) + 1 if step in STEPS else None
    return _page(template, status, flow=flow, step=number, steps=len(STEPS), state=_wizard(flow).state, **context)



# -- the menu -------------------------------------------------------------------------------------
@bp.get("/")
def index() -> Any:
    return _page("index.html")


# -- 忘記帳號 ---------------------------------------------------------------------------------------
@bp.route("/account", methods=["GET", "POST"])
def account() -> Any:
    form = forgot_account_form()
    if request.method == "GET" or not form.validate_on_submit():
        return _page("account.html", 400 if request.method == "POST" else 200, form=form)
    try:
        found = services.find_account(national_id=form.parsed_id, birthday=form.birthday.data,
                                      ip=request.remote_addr)
    except services.NoAccount:
        commit()  # the look-up's audit row
        return _page("no_account.html", 404, flow="account")
    commit()
    return _page("account_found.html", found=found)


# -- 忘記密碼: the choice ----------------------------------------------------------------------------
@bp.get("/password")
def password() -> Any:
    return _page("password.html")


# -- 啟用帳號: who may, and how ------------------------------------------------------------------------
@bp.get("/activate")
def activate() -> Any:
    return _page("activate.html", contact={"phone": settings().support_phone, "email": settings().support_email})


# -- personal data, step 1: the school ------------------------------------------------------------------
@bp.route(f"/{FLOW}/school", methods=["GET", "POST"])
def school(flow: str) -> Any:
    wizard = _wizard(flow)
    if wizard.get("done"):  # a finished flow started again
        wizard.clear()
    if request.method == "GET":
        form = identify.SchoolForm(data=identify.SchoolForm.data_for(wizard.get("school")))
        form.fill()
        return _step_page("school.html", flow, form=form)
    form = identify.SchoolForm()
    form.fill()
    if form.validate_on_submit():
        chosen = form.chosen()
        if chosen["school_code"] != (wizard.get("school") or {}).get("school_code"):
            wizard.forget(*LATER["school"])
        wizard.update(school=chosen)
        return redirect(url_for(".school_confirm", flow=flow))
    progress = form.show_progress()  # without JavaScript: a choice that opened the next list
    if progress is not None:
        return _step_page("school.html", flow, form=form, progress=progress)
    return _step_page("school.html", flow, 400, form=form)



# -- step 2: confirm the school ---------------------------------------------------------------------------
@bp.route(f"/{FLOW}/school/confirm", methods=["GET", "POST"])
def school_confirm(flow: str) -> Any:
    wizard = _wizard(flow)
    wizard.require(NEEDS[:1])
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        wizard.update(school_ok=True)
        return redirect(url_for(".person", flow=flow))
    return _step_page("school_confirm.html", flow, 400 if request.method == "POST" else 200, form=form)


# -- step 3: name, ID, birthday, captcha ---------------------------------------------------------------------
@bp.route(f"/{FLOW}/person", methods=["GET", "POST"])
def person(flow: str) -> Any:
    wizard = _wizard(flow)
    wizard.require(NEEDS[:2])
    form = identify.personal_data_form()
    if request.method == "GET" or not form.validate_on_submit():
        return _step_page("person.html", flow, 400 if request.method == "POST" else 200, form=form)
    school_code = wizard.get("school")["school_code"]
    wizard.forget(*LATER["person"])
    try:
        found = services.identify_owner(flow=flow, school_code=school_code, name=form.name.data,
                                        national_id=form.parsed_id, birthday=form.birthday.data,
                                        ip=request.remote_addr)
    except identify.NoPersonalData:
        commit()  # the refusal's audit row
        return _step_page("no_data.html", flow, 404, advice=_advice(flow, school_code))
    except services.NoAccount:
        commit()
        return _step_page("no_account.html", flow, 404)
    except (services.AccountIsDisabled, services.AccountIsActive) as exc:
        commit()
        template = "disabled.html" if isinstance(exc, services.AccountIsDisabled) else "active.html"
        return _step_page(template, flow, exc.status, username=exc.data.get("username"))
    commit()
    wizard.update(person=found.as_state(), birthday=form.birthday.data.isoformat())
    return redirect(url_for(".new_password", flow=flow))


def _advice(flow: str, school_code: str) -> dict[str, Any]:
    """The no-data advice (R-C6): for activation the pupils' database; for a reset, whose role is not
    asked, the pupils' and the staff's."""
    pupils = identify.advice_for(school_code, "學生")
    staff = None if flow == "activate" else identify.advice_for(school_code, "教師")["database"]
    return {**pupils, "staff_database": staff}


# -- step 4: confirm account and name, the new password twice -----------------------------------------------------
@bp.route(f"/{FLOW}/new", methods=["GET", "POST"])
def new_password(flow: str) -> Any:
    wizard = _wizard(flow)
    wizard.require(NEEDS)
    who = wizard.get("person")
    try:
        owner = services.owner_account(who["person_id"], flow)
    except services.StartAgain as exc:
        wizard.clear()
        flash(exc.message, "error")
        return redirect(url_for(".school", flow=flow))
    form = NewPasswordForm()
    if request.method == "GET" or not form.validate_on_submit():
        return _step_page("new_password.html", flow, 400 if request.method == "POST" else 200, form=form,
                          username=owner.username)
    state = dict(wizard.state)
    # Cleared before the reset: the reset signs the account out everywhere, which may empty this
    # browser's form session (and the wizard's key in it) when it was signed in as that account.
    wizard.clear()
    try:
        account = services.reset_with_personal_data(
            flow=flow, person_id=who["person_id"], school_code=state["school"]["school_code"],
            password=form.password.data, birthday=_birthday(state))
    except InvalidField as exc:
        wizard.update(**state)
        field_error(form, exc)
        return _step_page("new_password.html", flow, exc.status, form=form, username=owner.username)
    except services.StartAgain as exc:
        flash(exc.message, "error")
        return redirect(url_for(".school", flow=flow))
    except BaseException:
        wizard.update(**state)
        raise
    commit()
    _wizard(flow).update(done=account.username)
    return redirect(url_for(".done", flow=flow))


def _birthday(state: dict[str, Any]) -> dt.date | None:
    raw = state.get("birthday")
    return dt.date.fromisoformat(raw) if raw else None


@bp.get(f"/{FLOW}/done")
def done(flow: str) -> Any:
    username = _wizard(flow).get("done")
    if not username:
        return redirect(url_for(".password" if flow == "password" else ".activate"))
    return _page("done.html", flow=flow, username=username, login_url=_login_url())


# -- reset with a code: account name and where to send it -----------------------------------------------------
@bp.route("/password/code", methods=["GET", "POST"])
def code() -> Any:
    wizard = _wizard("code")
    if wizard.get("done"):
        wizard.clear()
    form = code_request_form()
    if request.method == "GET" or not form.validate_on_submit():
        return _page("code_request.html", 400 if request.method == "POST" else 200, form=form)
    token = services.request_code(username=form.username.data, channel=form.channel.data)
    wizard.clear()
    _wizard("code").update(token=token, channel=form.channel.data)
    return redirect(url_for(".code_enter"))


@bp.route("/password/code/enter", methods=["GET", "POST"])
def code_enter() -> Any:
    wizard = _wizard("code")
    wizard.require(CODE_NEEDS[:1])
    form = CodeForm()
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            try:
                account_id = services.verify_code(wizard.get("token"), form.code.data)
            except otp.TooManyTries as exc:
                commit()  # the failed tries' audit rows
                wizard.forget("token")
                return _page("code_enter.html", exc.status, form=form, channel=wizard.get("channel"),
                             too_many=exc.message, minutes=_minutes())
            except InvalidField as exc:  # a wrong or expired code
                commit()
                field_error(form, exc)
                status = exc.status
            else:
                commit()
                wizard.update(account_id=account_id)
                return redirect(url_for(".code_new"))
        form.code.data = ""
    return _page("code_enter.html", status, form=form, channel=wizard.get("channel"), minutes=_minutes())


def _minutes() -> int:
    return max(1, settings().otp_lifetime // 60)


@bp.route("/password/code/new", methods=["GET", "POST"])
def code_new() -> Any:
    wizard = _wizard("code")
    wizard.require(CODE_NEEDS)
    try:
        owner = services.code_account(wizard.get("account_id"))
    except services.StartAgain as exc:
        wizard.clear()
        flash(exc.message, "error")
        return redirect(url_for(".code"))
    form = NewPasswordForm()
    if request.method == "GET" or not form.validate_on_submit():
        return _page("code_new.html", 400 if request.method == "POST" else 200, form=form, username=owner.username)
    state = dict(wizard.state)
    wizard.clear()  # as in new_password: the reset may empty this browser's form session
    try:
        account = services.reset_with_code(account_id=owner.id, password=form.password.data)
    except InvalidField as exc:
        wizard.update(**state)
        field_error(form, exc)
        return _page("code_new.html", exc.status, form=form, username=owner.username)
    except services.StartAgain as exc:
        flash(exc.message, "error")
        return redirect(url_for(".code"))
    except BaseException:
        wizard.update(**state)
        raise
    commit()
    _wizard("code").update(done=account.username)
    return redirect(url_for(".code_done"))


@bp.get("/password/code/done")
def code_done() -> Any:
    username = _wizard("code").get("done")
    if not username:
        return redirect(url_for(".code"))
    return _page("done.html", flow="password", username=username, login_url=_login_url())

