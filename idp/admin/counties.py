"""The console's county page (R-L2, issue 12 item 6): the county providers, their state, a person's links.

Views over ``idp.federation.services`` (and ``idp.accounts.console.find`` to reach a person through
their account name, audited); registered on the console's blueprint, so the operator check,
``no-store`` and the header apply here too.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from idp.admin.views import _actor, bp
from idp.db import commit


class LinkLookupForm(FlaskForm):
    username = StringField(_l("Account name (exactly)"), validators=[DataRequired(_l("Type the account name.")),
                                                                    Length(max=64)],
                           render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"})
    submit = SubmitField(_l("Show county links"))


class CheckForm(FlaskForm):
    submit = SubmitField(_l("Check now"))


class UnlinkForm(FlaskForm):
    submit = SubmitField(_l("Unlink"))


def _page(form: LinkLookupForm, status: int = 200) -> Any:
    from idp.federation import services

    return render_template("admin/counties.html", counties=services.states(), form=form,
                           check_form=CheckForm(prefix="check")), status


@bp.route("/counties", methods=["GET", "POST"])
def counties() -> Any:
    from idp.accounts import console
    from idp.identity import services as identity

    form = LinkLookupForm()
    if form.validate_on_submit():
        account = console.find(form.username.data.strip(), _actor())
        commit()  # the look-up's audit row
        person = identity.person_for_account(account.id) if account is not None else None
        if person is not None:
            return redirect(url_for("admin.county_links", person_id=person.id, account=account.username))
        form.username.errors = [_l("There is no account with this name.") if account is None else
                                _l("This account is not linked to a person, so it has no county link.")]
        return _page(form, 404)
    return _page(form, 400 if request.method == "POST" else 200)


@bp.post("/counties/<name>/check")
def county_check(name: str) -> Any:
    from idp.federation import services

    form = CheckForm(prefix="check")
    if form.validate_on_submit():
        ok = services.check_now(name)
        label = services.county_label(services.client_for(name).provider.county)
        flash(_l("%(county)s answered: its discovery document and keys were fetched.", county=label) if ok else
              _l("%(county)s could not be reached; see the last error.", county=label), "info" if ok else "error")
    return redirect(url_for("admin.counties"))


@bp.get("/counties/people/<int(max=2147483647):person_id>")
def county_links(person_id: int) -> Any:
    from idp.federation import services

    return render_template("admin/county_links.html", person_id=person_id, account=request.args.get("account", ""),
                           links=services.links_of_person(person_id), form=UnlinkForm())


@bp.post("/counties/people/<int(max=2147483647):person_id>/links/<int(max=2147483647):link_id>/unlink")
def county_unlink(person_id: int, link_id: int) -> Any:
    from idp.federation import services

    form = UnlinkForm()
    if form.validate_on_submit():
        link = services.unlink(link_id, actor=_actor(), person_id=person_id)
        commit()
        flash(_l("The link to %(county)s is removed. The next sign-in with that county account links again only "
                 "if the county's records list this person.",
                 county=services.county_label(services.client_for(link.provider).provider.county)
                 if services.federation().get(link.provider) else link.provider), "info")
    return redirect(url_for("admin.county_links", person_id=person_id, account=request.args.get("account", "")))
