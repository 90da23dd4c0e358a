"""Customer-service reports: take one, list the queue, answer, close (R-C3).

A person who cannot find their school in the pickers reports it here instead of giving up: the
report waits in the operator console's queue with status new → answered → closed. Each step is
audited with the report id (the reporter's message and address stay in the report, out of the
audit trail and the logs). Taking reports is limited per client address
(``support.report``, ``support_reports_per_address`` an hour), and a captcha guards the form.

Services add and flush; the caller commits (``idp.db.commit``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from idp.errors import InvalidField, NotFound
from idp.extensions import db, settings
from idp.security import audit, ratelimit
from idp.support.models import ANSWERED, CLOSED, NEW, SCHOOL_MISSING, STATUSES, SupportReport

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
MAX_MESSAGE = 2000


def report_limit() -> ratelimit.Limit:
    """Reports per client address per hour (the named limit ``support.report``)."""
    return ratelimit.Limit("support.report", settings().support_reports_per_address, 3600)


def clean_email(value: str, field: str = "email") -> str:
    """A reachable-looking address, trimmed; ``InvalidField`` otherwise."""
    email = (value or "").strip()
    if len(email) > 254 or not EMAIL_RE.fullmatch(email):
        raise InvalidField(field, _l("Please enter an e-mail address such as name@example.com."))
    return email


def report_school_missing(*, county: str, school_name: str, email: str, message: str = "",
                          locale: str | None = None, ip: str | None = None) -> SupportReport:
    """Store a "我找不到我的學校" report for customer service; audited. Past the address's hourly
    allowance this raises ``RateLimited`` before anything is stored."""
    limit, address = report_limit(), ip or "unknown"
    ratelimit.check(limit, address)
    county, school_name, message = (county or "").strip(), (school_name or "").strip(), (message or "").strip()
    if not county or len(county) > 20:
        raise InvalidField("county", _l("Please choose the county or city."))
    if not school_name or len(school_name) > 100:
        raise InvalidField("school_name", _l("Please enter the school's name (at most 100 characters)."))
    if len(message) > MAX_MESSAGE:
        raise InvalidField("message", _l("Please keep the message under %(n)d characters.", n=MAX_MESSAGE))
    report = SupportReport(kind=SCHOOL_MISSING, status=NEW, county=county, school_name=school_name,
                           email=clean_email(email), message=message, locale=locale)
    db.session.add(report)
    db.session.flush()
    ratelimit.count_failure(limit, address)  # every report uses the allowance, not only bad ones
    audit.record(audit.SUPPORT_REPORTED, actor=None, report_id=report.id, kind=report.kind)
    return report


def reports(status: str | None = None, limit: int = 200) -> list[SupportReport]:
    """The queue: oldest first for open reports (first come, first answered), newest first for closed."""
    q = sa.select(SupportReport).limit(limit)
    if status in STATUSES:
        q = q.where(SupportReport.status == status)
    order = SupportReport.id.desc() if status == CLOSED or status is None else SupportReport.id
    return list(db.session.scalars(q.order_by(order)))


def counts() -> dict[str, int]:
    """How many reports have each status (every status present, 0 when none)."""
    rows = db.session.execute(sa.select(SupportReport.status, sa.func.count()).group_by(SupportReport.status))
    found = {status: n for status, n in rows}
    return {s: int(found.get(s, 0)) for s in STATUSES}


def get_report(report_id: int) -> SupportReport:
    report = db.session.get(SupportReport, report_id)
    if report is None:
        raise NotFound()
    return report


def answer(report_id: int, note: str, *, actor: str, mail: bool = False) -> SupportReport:
    """Record customer service's answer (and, with ``mail``, send it to the reporter through
    ``notify``; a failed delivery raises ``notify.DeliveryFailed`` and nothing is recorded). Audited."""
    report = get_report(report_id)
    if report.status == CLOSED:
        raise InvalidField("note", _l("This report is closed."), status=409)
    note = (note or "").strip()
    if not note:
        raise InvalidField("note", _l("Please write the answer."))
    if len(note) > MAX_MESSAGE:
        raise InvalidField("note", _l("Please keep the message under %(n)d characters.", n=MAX_MESSAGE))
    report.answer, report.answered_by, report.answered_at = note, actor, dt.datetime.now(dt.UTC)
    report.status = ANSWERED
    report.answer_mailed = report.answer_mailed or mail
    audit.record(audit.SUPPORT_ANSWERED, actor=actor, report_id=report.id, mailed=mail)
    db.session.flush()
    if mail:
        from idp import notify

        notify.send_mail(report.email, "support_answer", locale=report.locale, answer=note,
                         school_name=report.school_name, county=report.county, report_id=report.id)
    return report


def close(report_id: int, *, actor: str) -> SupportReport:
    """Close a report (answered or not: a duplicate, a school added meanwhile); audited once."""
    report = get_report(report_id)
    if report.status == CLOSED:
        return report
    report.status, report.closed_by, report.closed_at = CLOSED, actor, dt.datetime.now(dt.UTC)
    audit.record(audit.SUPPORT_CLOSED, actor=actor, report_id=report.id)
    db.session.flush()
    return report


def contact() -> dict[str, Any]:
    """Customer service's contact details, from settings (R-H1)."""
    s = settings()
    return {"phone": s.support_phone, "email": s.support_email, "hours": s.support_hours}
