"""Security events as data (DESIGN rule 8): a row plus a log line per event.

Event names are stable constants that tests assert on. Fields must never carry a national ID
(pass its blind index), a password, a secret or a token.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import has_request_context, request

from idp.db import utcnow
from idp.extensions import db
from idp.security.models import AuditEvent

log = logging.getLogger("idp.audit")

LOGIN_SUCCESS = "login.success"
LOGIN_FAILURE = "login.failure"
LOGIN_LOCKED = "login.locked"
LOGOUT = "logout"
CONSENT_GRANTED = "consent.granted"
CONSENT_REVOKED = "consent.revoked"
TOKEN_ISSUED = "token.issued"
TOKEN_REVOKED = "token.revoked"
CODE_REPLAYED = "code.replayed"
REFRESH_REUSED = "refresh.reused"
CLIENT_CREATED = "client.created"
CLIENT_UPDATED = "client.updated"
CLIENT_DELETED = "client.deleted"
CLIENT_SECRET_ROTATED = "client.secret_rotated"
CLIENT_AUTH_FAILED = "client.auth_failure"
KEY_ROTATED = "key.rotated"
KEY_RETIRED = "key.retired"
ACCOUNT_CREATED = "account.created"
ACCOUNT_DISABLED = "account.disabled"
ACCOUNT_ENABLED = "account.enabled"
PASSWORD_CHANGED = "password.changed"
PASSWORD_CHECK_FAILED = "password.check_failed"
CONTACT_VERIFIED = "contact.verified"
PASSWORD_REHASHED = "password.rehashed"
IDENTITY_LOOKUP = "identity.lookup"
IDENTITY_VIEWED = "identity.viewed"
IDENTITY_LINKED = "identity.linked"
IDENTITY_UNLINKED = "identity.unlinked"
CONFLICT_RESOLVED = "identity.conflict_resolved"
# one-time codes (idp.security.otp): the target masked, never the code
OTP_SENT = "otp.sent"
OTP_VERIFIED = "otp.verified"
OTP_FAILED = "otp.failed"
# applying for a cloud account (idp.accounts.apply): person ids and school codes, never an ID
ACCOUNT_APPLIED = "account.applied"
APPLY_IDENTIFIED = "account.apply_identified"
APPLY_REFUSED = "account.apply_refused"  # reason: no_data / exists / disabled
IDENTITY_SCHOOL_SET = "identity.school_set"
# forgot account, reset password, activate (idp.accounts.recover): account and person ids, never an ID or code
ACCOUNT_FOUND = "account.found"  # 忘記帳號: found (True/False); the account id when found
PASSWORD_RESET = "password.reset"  # how: personal_data / code
PASSWORD_RESET_REQUESTED = "password.reset_requested"  # a code asked for: sent (True/False), never to whom
ACCOUNT_ACTIVATED = "account.activated"
RECOVER_REFUSED = "account.recover_refused"  # flow, reason: no_data / no_account / disabled / active
# the operator console's accounts page (idp.admin)
ACCOUNT_LOOKUP = "account.lookup"
ACCOUNT_UNLOCKED = "account.unlocked"
# customer-service reports (idp.support): the report id, never the reporter's message
SUPPORT_REPORTED = "support.reported"
SUPPORT_ANSWERED = "support.answered"
SUPPORT_CLOSED = "support.closed"
# county-account sign-in (idp.federation): county names, person and account ids, never a county subject or token
FEDERATION_LINKED = "federation.linked"
FEDERATION_RELINKED = "federation.relinked"  # the county's records moved the account to another person
FEDERATION_UNLINKED = "federation.unlinked"  # an operator removed a link
FEDERATION_REFUSED = "federation.refused"  # reason: state / county_error:* / id_token: * / not_enrolled / ...
ACCOUNT_RENAMED = "account.renamed"
# a sync in which people left a source (idp.sources.sync): counts and the snapshot's hash prefix, never who
SOURCE_LEFT = "source.left"


def record(event: str, actor: str | None = None, client_id: str | None = None, *, ip: str | None = None,
           **data: Any) -> None:
    """Write one audit row in the caller's transaction (it is kept if the flow commits, gone with it
    if it fails) and one log line. ``ip``: the address, when there is no request to read it from
    (a background thread). The row is one Core INSERT on the session, sent now: through the unit
    of work it cost a sign-in more than the statement itself (issue 11); nothing reads the object."""
    db.session.execute(*row(event, actor, client_id, ip=ip, **data))


def row(event: str, actor: str | None = None, client_id: str | None = None, *, ip: str | None = None,
        **data: Any) -> tuple[Any, dict[str, Any]]:
    """The INSERT and parameters of one audit row, for a caller that sends it together with writes
    of its own (``idp.db.write_together``: a sign-in's ``last_login_at`` and its row in one round
    trip); the log line is written now. ``record`` is the usual way."""
    if ip is None and has_request_context():
        ip = request.remote_addr
    log.info("%s actor=%s client=%s ip=%s %s", event, actor, client_id, ip,
             " ".join(f"{k}={v}" for k, v in sorted(data.items())))
    return _INSERT, {"at": utcnow(), "event": event, "actor": actor, "ip": ip, "client_id": client_id, "data": data}


_INSERT = AuditEvent.__table__.insert().inline()  # no RETURNING of the new id: nothing reads it


# -- reading the trail (the operator console) --------------------------------------------------
def events(*, event: str | None = None, actor: str | None = None, client_id: str | None = None,
           before_id: int | None = None, limit: int = 50) -> list[AuditEvent]:
    """Newest first, filtered, paged by id (stable while new events arrive)."""
    q = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if event:
        q = q.where(AuditEvent.event.startswith(event))
    if actor:
        q = q.where(AuditEvent.actor == actor)
    if client_id:
        q = q.where(AuditEvent.client_id == client_id)
    if before_id:
        q = q.where(AuditEvent.id < before_id)
    return list(db.session.scalars(q))


def events_for_account(account_id: int, names: tuple[str, ...], limit: int = 20,
                       days: int = 400) -> list[AuditEvent]:
    """The latest events of these kinds about one account in the last ``days`` (the console's account
    page), newest first. The account id is inside ``data``: the time bound keeps the scan to the
    recent part of the trail (``at`` is indexed)."""
    import datetime as dt

    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    q = (sa.select(AuditEvent).where(AuditEvent.at >= since, AuditEvent.event.in_(names),
                                     AuditEvent.data["account_id"].as_integer() == account_id)
         .order_by(AuditEvent.id.desc()).limit(limit))
    return list(db.session.scalars(q))


def event_names() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.event).distinct().order_by(AuditEvent.event)))
