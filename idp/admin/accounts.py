"""The console's accounts page (issue 10 items 7 and 14): find an account, see why it cannot sign in,
disable, enable, unlock. Views over ``idp.accounts.console``; registered on the console's blueprint
(``admin.views.bp``), so the operator check, ``no-store`` and the header apply here too."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length

from idp.accounts import console
from idp.admin.views import _actor, bp
from idp.db import commit
from idp.errors import IdpError
from idp.forms import field_error


class AccountLookupForm(FlaskForm):
    username = StringField(_l("Account name (exactly)"), validators=[DataRequired(_l("Type the account name.")),
                                                                    Length(max=64)],
                           render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"})
    submit = SubmitField(_l("Find"))


class DisableForm(FlaskForm):
    note = TextAreaField(_l("Why (kept in the audit trail, shown to other operators)"),
                         validators=[Length(max=500)], render_kw={"rows": "3", "maxlength": "500"})
    submit = SubmitField(_l("Disable the account"))


class EnableForm(FlaskForm):
    submit = SubmitField(_l("Enable the account"))


class UnlockForm(FlaskForm):
    submit = SubmitField(_l("Unlock sign-in"))


@bp.route("/accounts", methods=["GET", "POST"])
def accounts() -> Any:
    form = AccountLookupForm()
    status = 200
    if form.validate_on_submit():
        found = console.find(form.username.data.strip(), _actor())
        commit()  # the look-up's audit row
        if found is not None:
            return redirect(url_for("admin.account", account_id=found.id))
        form.username.errors = [_l("There is no account with this name.")]
        status = 404
    elif request.method == "POST":
        status = 400
    return render_template("admin/accounts.html", form=form), status


def _account_page(account_id: int, status: int = 200, **forms: Any) -> Any:
    forms = {"disable_form": DisableForm(prefix="disable"), "enable_form": EnableForm(prefix="enable"),
             "unlock_form": UnlockForm(prefix="unlock"), **forms}
    return render_template("admin/account.html", view=console.view(account_id), **forms), status


@bp.get("/accounts/<int(max=2147483647):account_id>")
def account(account_id: int) -> Any:
    return _account_page(account_id)


@bp.post("/accounts/<int(max=2147483647):account_id>/disable")
def account_disable(account_id: int) -> Any:
    form = DisableForm(prefix="disable")
    if form.validate_on_submit():
        try:
            console.disable(account_id, form.note.data, _actor())
        except IdpError as exc:
            field_error(form, exc)
            return _account_page(account_id, exc.status, disable_form=form)
        commit()
        flash(_l("The account is disabled and signed out everywhere."), "info")
        return redirect(url_for("admin.account", account_id=account_id))
    return _account_page(account_id, 400, disable_form=form)


@bp.post("/accounts/<int(max=2147483647):account_id>/enable")
def account_enable(account_id: int) -> Any:
    form = EnableForm(prefix="enable")
    if form.validate_on_submit():
        try:
            console.enable(account_id, _actor())
        except IdpError as exc:
            flash(exc.message, "error")
            return redirect(url_for("admin.account", account_id=account_id))
        commit()
        flash(_l("The account is active again."), "info")
        return redirect(url_for("admin.account", account_id=account_id))
    return _account_page(account_id, 400, enable_form=form)


@bp.post("/accounts/<int(max=2147483647):account_id>/unlock")
def account_unlock(account_id: int) -> Any:
    form = UnlockForm(prefix="unlock")
    if form.validate_on_submit():
        console.unlock(account_id, _actor())
        commit()
        flash(_l("Sign-in failures forgotten: the account can sign in again at once."), "info")
        return redirect(url_for("admin.account", account_id=account_id))
    return _account_page(account_id, 400, unlock_form=form)
