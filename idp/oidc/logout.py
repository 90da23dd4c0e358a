"""RP-initiated logout (OIDC RP-Initiated Logout 1.0) and back-channel logout (OIDC Back-Channel Logout 1.0).

The end-session endpoint is Authlib's: it validates ``id_token_hint`` against our keys (an
expired hint is accepted, §2) and only redirects to a ``post_logout_redirect_uri`` that is
registered for that client (§3). Ending the SSO session is the login package's job
(``sessions.end_session``); it announces every ended session with the ``session_ended``
signal, and here each relying party of that session that registered a
``backchannel_logout_uri`` receives a signed logout token. Deliveries run in parallel and are
bounded by ``backchannel_logout_timeout``; a failure is logged and never blocks the logout.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

import requests
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import Flask, current_app
from joserfc import jwt

from idp.extensions import settings
from idp.oidc import services, subjects

log = logging.getLogger(__name__)

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class EndSessionEndpoint(_EndSessionEndpoint):
    def get_server_jwks(self) -> Any:
        return current_app.extensions["idp.keys"].verification_keyset()

    def get_algorithms(self) -> list[str]:
        return ["RS256", "ES256"]

    def resolve_client_from_id_token_claims(self, id_token_claims: dict) -> Any:
        """Our ID tokens carry ``aud`` as a one-element list: that element is the client."""
        aud = id_token_claims.get("aud")
        if isinstance(aud, list) and len(aud) == 1:
            aud = aud[0]
        return self.server.query_client(aud) if isinstance(aud, str) else None

    def end_session(self, end_session_request: Any) -> None:
        from idp.login import sessions

        current = sessions.current_session()
        sid = current.sid if current else (end_session_request.id_token_claims or {}).get("sid")
        if sid:
            sessions.end_session(sid)


def make_logout_token(client: Any, account: Any, sid: str) -> str:
    """A logout token (Back-Channel Logout §2.4): like an ID token, with ``events`` and no nonce."""
    key = current_app.extensions["idp.keys"].signing_key(client.id_token_signed_response_alg or "RS256")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings().issuer,
        "aud": [client.client_id],
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "sid": sid,
        "events": {BACKCHANNEL_EVENT: {}},
    }
    if account is not None:
        claims["sub"] = subjects.subject_for(client, account)
    header = {"typ": "logout+jwt", "alg": key.alg, "kid": key.kid}
    return jwt.encode(header, claims, key.key, algorithms=[key.alg])


def _deliver(client_id: str, uri: str, token: str, timeout: float) -> None:
    try:
        resp = requests.post(uri, data={"logout_token": token}, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        log.warning("back-channel logout to client %s failed: %s", client_id, type(exc).__name__)
        return
    if resp.status_code >= 300:
        log.warning("back-channel logout to client %s answered HTTP %s", client_id, resp.status_code)


def send_backchannel_logout(sid: str, account_id: int | None, client_ids: Any) -> int:
    """Notify every client of the session that registered a back-channel URI; return how many."""
    account = services.get_account(account_id) if account_id is not None else None
    deliveries = []
    for client_id in sorted(set(client_ids or ())):
        client = services.get_client(client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        deliveries.append((client_id, client.backchannel_logout_uri, make_logout_token(client, account, sid)))
    timeout = settings().backchannel_logout_timeout
    threads = [threading.Thread(target=_deliver, args=(*d, timeout), daemon=True) for d in deliveries]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout + 0.5
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return len(deliveries)


def _on_session_ended(sender: Any, **kwargs: Any) -> None:
    try:
        send_backchannel_logout(str(sender), kwargs.get("account_id"), kwargs.get("client_ids"))
    except Exception:  # a logout must never fail because a relying party could not be told
        log.exception("back-channel logout for a session failed")


def init_app(app: Flask) -> None:
    """Subscribe to the login package's ``session_ended`` signal (any logout, any process path)."""
    try:
        from idp.login.sessions import session_ended
    except ImportError:  # pragma: no cover - the login package is written in parallel
        log.warning("idp.login.sessions.session_ended not available: no back-channel logout")
        return
    session_ended.connect(_on_session_ended, weak=False)
