"""Security events as data (DESIGN rule 8): a row plus a log line per event.

Event names are stable constants that tests assert on. Fields must never carry a national ID
(pass its blind index), a password, a secret or a token.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import has_request_context, request

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
PASSWORD_REHASHED = "password.rehashed"
IDENTITY_LOOKUP = "identity.lookup"
IDENTITY_VIEWED = "identity.viewed"
CONFLICT_RESOLVED = "identity.conflict_resolved"


def record(event: str, actor: str | None = None, client_id: str | None = None, commit: bool = True,
           **data: Any) -> AuditEvent:
    """Write one audit row (committed unless ``commit=False``) and one log line."""
    ip = request.remote_addr if has_request_context() else None
    row = AuditEvent(event=event, actor=actor, ip=ip, client_id=client_id, data=data)
    db.session.add(row)
    if commit:
        db.session.commit()
    log.info("%s actor=%s client=%s ip=%s %s", event, actor, client_id, ip,
             " ".join(f"{k}={v}" for k, v in sorted(data.items())))
    return row
