"""RP-initiated logout (OIDC RP-Initiated Logout 1.0) and back-channel logout (OIDC Back-Channel Logout 1.0).

The end-session endpoint is Authlib's: it validates ``id_token_hint`` against our keys (an
expired hint is accepted, §2) and only redirects to a ``post_logout_redirect_uri`` that is
registered for that client (§3). A hint only spares the person the confirmation when it was
issued in the browser's current session (its ``sid``, or failing that its ``sub``): any token
someone else obtained must not sign a person out unasked (§6).

Ending the SSO session is the login package's job (``sessions.end_session``); it announces
every ended session with the ``session_ended`` signal. Here that revokes the session's tokens
(refresh tokens granted for ``offline_access`` excepted) and each relying party of that session
that registered a ``backchannel_logout_uri`` receives a signed logout token. Deliveries run on a
small per-app thread pool, off the request: a slow or dead relying party never delays a logout,
each call is bounded by ``backchannel_logout_timeout``, and in production an endpoint that
resolves to a loopback or private address is not called (the provider must not be a way into
its own network).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import Flask, current_app
from joserfc import jwt

from idp.extensions import settings
from idp.oidc import services, subjects
from idp.security import audit

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
        """End this browser's session, and only that: a hint never names another session to end."""
        from idp.login import sessions

        current = sessions.current_session()
        if current is not None:
            sessions.end_session(current.sid)


def hint_is_for(sso: Any, end_session_request: Any) -> bool:
    """Was the ``id_token_hint`` issued in this SSO session (same ``sid``; a hint without one:
    same ``sub`` for its client)? Only then may the session end without asking."""
    claims = end_session_request.id_token_claims
    if not claims or sso is None:
        return False
    if claims.get("sid"):
        return hmac.compare_digest(str(claims["sid"]), sso.public_sid)
    client = end_session_request.client
    account = services.get_account(sso.account_id)
    return client is not None and account is not None and claims.get("sub") == subjects.subject_for(client, account)


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


def _private_address(host: str) -> bool:
    """Does ``host`` resolve to an address the provider must not call from production?"""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False  # unresolvable: the request itself fails and is logged
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast \
                or ip.is_unspecified:
            return True
    return False


def _deliver(client_id: str, uri: str, token: str, timeout: float, production: bool) -> None:
    if production and _private_address(urlsplit(uri).hostname or ""):
        log.warning("back-channel logout to client %s not sent: its endpoint resolves to a private address",
                    client_id)
        return
    try:
        resp = requests.post(uri, data={"logout_token": token}, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        log.warning("back-channel logout to client %s failed: %s", client_id, type(exc).__name__)
        return
    if resp.status_code >= 300:
        log.warning("back-channel logout to client %s answered HTTP %s", client_id, resp.status_code)


def send_backchannel_logout(public_sid: str, account_id: int | None, client_ids: Any) -> int:
    """Queue a logout token for every client of the session that registered a back-channel URI;
    return how many. The tokens are signed here (keys are per app); the calls happen later."""
    account = services.get_account(account_id) if account_id is not None else None
    s = settings()
    pool: ThreadPoolExecutor = current_app.extensions["idp.backchannel_pool"]
    queued = 0
    for client_id in sorted(set(client_ids or ())):
        client = services.get_client(client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        token = make_logout_token(client, account, public_sid)
        pool.submit(_deliver, client_id, client.backchannel_logout_uri, token, s.backchannel_logout_timeout,
                    s.is_production)
        queued += 1
    return queued


def _on_session_ended(sender: Any, **kwargs: Any) -> None:
    public_sid = str(sender)
    try:
        services.revoke_session_tokens(public_sid)
    except Exception:  # the session is gone already; its tokens expire on their own
        log.exception("revoking the tokens of an ended session failed")
    try:
        send_backchannel_logout(public_sid, kwargs.get("account_id"), kwargs.get("client_ids"))
    except Exception:  # a logout must never fail because a relying party could not be told
        log.exception("back-channel logout for a session failed")


def _on_password_reset(sender: Any, **kwargs: Any) -> None:
    """A reset password (or a disabled account): its tokens stop working, offline ones too. In the
    caller's transaction: errors go through, so the reset is not reported done without it."""
    count = services.revoke_account_tokens(int(sender))
    if count:
        audit.record(audit.TOKEN_REVOKED, account_id=int(sender), kind="all", reason=kwargs.get("reason"),
                     count=count)


def init_app(app: Flask) -> None:
    """Subscribe to the login package's ``session_ended`` signal (any logout, any process path) and to
    the accounts package's ``password_reset`` / ``account_disabled``."""
    from idp.accounts import signals
    from idp.login.sessions import session_ended

    app.extensions["idp.backchannel_pool"] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="backchannel")
    session_ended.connect(_on_session_ended, weak=False)
    signals.password_reset.connect(_on_password_reset, weak=False)
    signals.account_disabled.connect(_on_password_reset, weak=False)
