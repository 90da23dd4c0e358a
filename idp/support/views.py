"""The help pages (R-H1, R-C3): 常見問題 ``/help``, 聯絡我們 ``/help/contact`` and the report
"我找不到我的學校" ``/help/school-missing`` offered beside every school picker."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import get_locale

from idp.db import commit
from idp.errors import InvalidField
from idp.support import services
from idp.support.forms import SchoolMissingForm

bp = Blueprint("support", __name__, url_prefix="/help")

_THANKED = "support.reported"


@bp.get("")
def faq() -> Any:
    """常見問題: the seed's questions and answers."""
    return render_template("support/faq.html", contact=services.contact())


@bp.get("/contact")
def contact() -> Any:
    return render_template("support/contact.html", contact=services.contact())


@bp.route("/school-missing", methods=["GET", "POST"])
def school_missing() -> Any:
    form = SchoolMissingForm()
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                report = services.report_school_missing(
                    county=form.county.data, school_name=form.school_name.data, email=form.email.data,
                    message=form.message.data, locale=str(get_locale() or ""), ip=request.remote_addr)
                commit()
            except InvalidField as exc:
                field = getattr(form, exc.field, None)
                if field is not None:
                    field.errors = [*field.errors, exc.message]
            else:
                session[_THANKED] = report.id
                return redirect(url_for("support.school_missing_thanks"))
        return render_template("support/school_missing.html", form=form, contact=services.contact()), 400
    return render_template("support/school_missing.html", form=form, contact=services.contact())


@bp.get("/school-missing/thanks")
def school_missing_thanks() -> Any:
    report_id = session.get(_THANKED)
    if report_id is None:
        return redirect(url_for("support.school_missing"))
    return render_template("support/school_missing_thanks.html", report_id=report_id, contact=services.contact())
