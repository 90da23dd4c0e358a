"""The operator console at ``/admin/`` (issue 2 item 9, issue 3 item 9; R-O3, R-N3).

Every page needs a signed-in operator: nobody signed in is sent to the login page, a signed-in
person without the operator role gets 403. Views are thin (DESIGN rule 4): bind the form, call
one service, then render or redirect. No page is cached anywhere (``no-store``): they hold
secrets shown once, names of children and audit data.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from wtforms.fields.choices import SelectChoice

from idp.admin.forms import (
    ClientForm,
    ConfirmForm,
    KeyRetireForm,
    KeyRotateForm,
    PersonLookupForm,
    ResolveConflictForm,
)
from idp.db import commit
from idp.errors import Forbidden, IdpError
from idp.forms import field_error
from idp.identity import services as identity
from idp.oidc import registration
from idp.oidc import services as oidc_services
from idp.security import audit

bp = Blueprint("admin", __name__, url_prefix="/admin")

LOOKED_UP = "admin_looked_up"


def _operator() -> Any:
    from idp.login import sessions

    return sessions.current_account()


@bp.before_request
def require_operator() -> Any:
    from idp.login import sessions

    account = _operator()
    if account is None:
        return redirect(sessions.login_url(request.full_path if request.query_string else request.path))
    if not account.is_operator:
        raise Forbidden(_l("Only operators may use the operator console."))
    return None


@bp.context_processor
def console_context() -> dict[str, Any]:
    """The console's header names the signed-in operator and offers to sign out."""
    return {"operator_account": _operator}


@bp.after_request
def no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    return resp


def _actor() -> str:
    return _operator().username



@bp.get("/")
def index() -> Any:
    return redirect(url_for("admin.clients"))


# -- relying-party apps --------------------------------------------------------------------------
@bp.get("/clients")
def clients() -> Any:
    return render_template("admin/clients.html", clients=registration.list_clients())


@bp.route("/clients/new", methods=["GET", "POST"])
def client_new() -> Any:
    form = ClientForm()
    if request.method == "GET":
        form.fill(registration.DEFAULTS)
        return render_template("admin/client_form.html", form=form, client=None)
    if form.validate_on_submit():
        try:
            reg = registration.create_client(form.registration(), _actor(), client_id=form.client_id.data or None)
            commit()
        except IdpError as exc:
            field_error(form, exc)
        else:
            # Rendered, not redirected: the secret exists in clear only in this one response.
            return render_template("admin/secret.html", client=reg.client, secret=reg.secret, created=True)
    return render_template("admin/client_form.html", form=form, client=None), 400


@bp.get("/clients/<client_id>")
def client(client_id: str) -> Any:
    item = registration.get_client(client_id)
    return render_template("admin/client.html", client=item, info=registration.describe(item))


@bp.route("/clients/<client_id>/edit", methods=["GET", "POST"])
def client_edit(client_id: str) -> Any:
    item = registration.get_client(client_id)
    form = ClientForm()
    del form.client_id  # fixed once registered: relying parties have it in their configuration
    if request.method == "GET":
        form.fill(registration.describe(item))
        return render_template("admin/client_form.html", form=form, client=item)
    if form.validate_on_submit():
        try:
            reg = registration.update_client(client_id, form.registration(), _actor())
            commit()
        except IdpError as exc:
            field_error(form, exc)
        else:
            if reg.secret:
                return render_template("admin/secret.html", client=reg.client, secret=reg.secret, created=False)
            flash(_l("Saved. Every server uses the new registration from now on."), "info")
            return redirect(url_for("admin.client", client_id=client_id))
    return render_template("admin/client_form.html", form=form, client=item), 400


@bp.route("/clients/<client_id>/rotate-secret", methods=["GET", "POST"])
def client_rotate(client_id: str) -> Any:
    item = registration.get_client(client_id)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            reg = registration.rotate_secret(client_id, _actor())
            commit()
        except registration.InvalidRegistration as exc:  # an app without a secret (public, private_key_jwt)
            flash(exc.message, "error")
            return redirect(url_for("admin.client", client_id=client_id))
        return render_template("admin/secret.html", client=reg.client, secret=reg.secret, created=False)
    return render_template("admin/client_rotate.html", client=item, form=form)


@bp.route("/clients/<client_id>/delete", methods=["GET", "POST"])
def client_delete(client_id: str) -> Any:
    item = registration.get_client(client_id)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        counts = registration.delete_client(client_id, _actor())
        commit()
        flash(_l("Deleted %(name)s: %(tokens)d tokens revoked, %(consents)d consents removed.",
                 name=item.name, tokens=counts["tokens_revoked"], consents=counts["consents_removed"]), "info")
        return redirect(url_for("admin.clients"))
    return render_template("admin/client_delete.html", client=item, form=form)


# -- signing keys ----------------------------------------------------------------------------
@bp.route("/keys", methods=["GET", "POST"])
def keys() -> Any:
    store = current_app.extensions["idp.keys"]
    rotate_form, retire_form = KeyRotateForm(prefix="rotate"), KeyRetireForm(prefix="retire")
    if request.method == "POST":
        if rotate_form.submit.data and rotate_form.validate_on_submit():
            oidc_services.rotate_signing_keys(_actor(), (rotate_form.alg.data,) if rotate_form.alg.data
                                              else ("RS256", "ES256"))
            commit()
            flash(_l("New signing keys are in use; the previous ones stay published until their tokens expire."),
                  "info")
            return redirect(url_for("admin.keys"))
        if retire_form.submit.data and retire_form.validate_on_submit():
            from idp.oidc.keys import UnknownKey

            try:
                oidc_services.retire_signing_key(_actor(), retire_form.kid.data)
                commit()
            except UnknownKey:
                flash(_l("There is no such key."), "error")
            else:
                flash(_l("Key retired."), "info")
            return redirect(url_for("admin.keys"))
        flash(_l("The form expired. Please try again."), "error")
    published = {k.kid for k in store.published()}
    return render_template("admin/keys.html", keys=store.all(), published=published, rotate_form=rotate_form,
                           retire_form=retire_form)


# -- audit trail -----------------------------------------------------------------------------
@bp.get("/audit")
def audit_log() -> Any:
    args = request.args
    before = args.get("before", type=int)
    events = audit.events(event=args.get("event") or None, actor=args.get("actor") or None,
                                   client_id=args.get("client_id") or None, before_id=before, limit=51)
    more = len(events) > 50
    return render_template("admin/audit.html", events=events[:50], more=more, names=audit.event_names(),
                           filters={k: args.get(k, "") for k in ("event", "actor", "client_id")})


# -- people and conflicts (issue 3 item 9) ---------------------------------------------------
@bp.route("/people", methods=["GET", "POST"])
def people() -> Any:
    form = PersonLookupForm()
    status = 200
    if form.validate_on_submit():
        raw = form.national_id.data
        form.national_id.data = ""  # never echoed back
        try:
            person = identity.lookup_person(raw, _actor())
            commit()  # the look-up's audit row
        except IdpError as exc:
            if exc.status == 429:
                raise
            form.national_id.errors = [exc.message]
            status = 400
        else:
            if person is not None:
                session[LOOKED_UP] = person.id  # the page it leads to is this look-up, not another
                return redirect(url_for("admin.person", person_id=person.id))
            flash(_l("No person with this number is known from any source."), "info")
            status = 404
    elif request.method == "POST":
        status = 400
    return render_template("admin/people.html", form=form), status


@bp.get("/people/<int(max=2147483647):person_id>")
def person(person_id: int) -> Any:
    view = identity.person_view(person_id, _actor(), counted=session.pop(LOOKED_UP, None) == person_id)
    commit()  # the view's audit row
    return render_template("admin/person.html", view=view)


@bp.get("/conflicts")
def conflicts() -> Any:
    return render_template("admin/conflicts.html", items=identity.open_conflicts())


@bp.route("/conflicts/<int(max=2147483647):conflict_id>", methods=["GET", "POST"])
def conflict(conflict_id: int) -> Any:
    item, who = identity.get_conflict(conflict_id)
    form = ResolveConflictForm()
    by_value: dict[str, list[str]] = {}
    for source, value in sorted((item.values or {}).items()):
        by_value.setdefault(str(value), []).append(source)
    form.chosen.choices = [SelectChoice(v, f"{v} ({', '.join(s)})") for v, s in by_value.items()]
    if request.method == "POST" and item.status != "open":
        flash(_l("This conflict was already resolved."), "error")
        return render_template("admin/conflict.html", item=item, person=who, form=form), 409
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                identity.resolve_conflict(conflict_id, form.chosen.data, form.note.data, _actor())
                commit()
            except IdpError as exc:
                field_error(form, exc)
            else:
                flash(_l("Conflict resolved."), "info")
                return redirect(url_for("admin.conflicts"))
        return render_template("admin/conflict.html", item=item, person=who, form=form), 400
    return render_template("admin/conflict.html", item=item, person=who, form=form)


@bp.app_template_filter("timestamp")
def timestamp(value: int | None) -> str:
    """A Unix time (key dates) as people read it: local date and time (``i18n.local_time``)."""
    from idp.i18n import local_time

    return local_time(value)


# -- customer-service reports (R-C3): "I can't find my school" ---------------------------------
@bp.get("/support")
def support_reports() -> Any:
    from idp.support import services as support
    from idp.support.models import STATUSES

    status = request.args.get("status", "new")
    status = status if status in (*STATUSES, "all") else "new"
    return render_template("admin/support.html", reports=support.reports(None if status == "all" else status),
                           counts=support.counts(), status=status, statuses=STATUSES)


@bp.route("/support/<int(max=2147483647):report_id>", methods=["GET", "POST"])
def support_report(report_id: int) -> Any:
    from idp.support import services as support
    from idp.support.forms import AnswerForm, CloseForm

    report = support.get_report(report_id)
    answer_form, close_form = AnswerForm(prefix="answer"), CloseForm(prefix="close")
    if request.method == "GET":
        answer_form.note.data = report.answer or ""
        return render_template("admin/support_report.html", report=report, answer_form=answer_form,
                               close_form=close_form)
    if close_form.submit.data and close_form.validate_on_submit():
        support.close(report_id, actor=_actor())
        commit()
        flash(_l("Report closed."), "info")
        return redirect(url_for("admin.support_reports"))
    if answer_form.submit.data and answer_form.validate_on_submit():
        try:
            support.answer(report_id, answer_form.note.data, actor=_actor(), mail=answer_form.mail.data)
            commit()
        except IdpError as exc:
            if exc.status >= 500:  # the mail could not be sent: nothing is recorded
                from idp.db import rollback

                rollback()
                answer_form.mail.errors = [exc.message]
            elif exc.status == 409:  # closed meanwhile: the answer form is no longer shown
                flash(exc.message, "error")
            else:
                field_error(answer_form, exc)
        else:
            flash(_l("Answer saved and sent to the reporter.") if answer_form.mail.data else _l("Answer saved."),
                  "info")
            return redirect(url_for("admin.support_report", report_id=report_id))
    return render_template("admin/support_report.html", report=support.get_report(report_id),
                           answer_form=answer_form, close_form=close_form), 400
