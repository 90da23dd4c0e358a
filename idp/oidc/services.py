"""Rules behind the OIDC endpoints: codes, tokens and their families, consents (R-O1, R-L4).

Like every service, these add and flush; the endpoint that called them commits (``idp.db.commit``),
so a token row, the refresh token it replaces and the audit row of a replay are one transaction.

Authorization codes are short-lived protocol state, so they live in the store (any process
may redeem them, exactly once, through ``getdel``). Access and refresh tokens are opaque
random strings kept in the database only as SHA-256 hashes. Every token issued from one code
shares a ``family_id`` with all its refreshes, so a replayed code or a reused refresh token
(RFC 9700 §2.2.2, §4.14) revokes the whole family at once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import time
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_app_context, has_request_context, request
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session

from idp.db import alone_engine, read_alone, run_alone
from idp.extensions import db, settings, store
from idp.oidc.models import Client, Consent, Token
from idp.security import audit
from idp.store import Batch

CODE_KEY = "oidc:code:"
CODE_FAMILY_KEY = "oidc:code-family:"


def get_account(account_id: int) -> Any:
    """The account, read through ``accounts.services`` (DESIGN: oidc never reads accounts directly)."""
    from idp.accounts.services import get_account as _get

    return _get(account_id)


def get_client(client_id: str | None) -> Client | None:
    """The registered client, as a read-only snapshot shared by this process's requests.

    Every OIDC request reads its client two to five times (Authlib asks, then the ID token, then
    logout), and a client row changes a few times a year, so each process keeps detached copies.
    Any write to a client (see ``_watch_client_writes``) publishes on the store's
    ``oidc:clients-changed`` channel, and every process listens (``_client_cache``): a rotated
    secret or a deleted client stops working at once in every process, without a store round trip
    per request. While a process is not subscribed (starting, Redis reconnecting) it falls back to
    reading one version number from the store per request. The snapshot is detached from the
    session: change clients through ``idp.oidc.registration``, never through this object.
    """
    if not client_id:
        return None
    cache = _client_cache()
    client = cache.get(client_id)
    if client is None:
        client = db.session.execute(db.select(Client).filter_by(client_id=client_id)).scalar_one_or_none()
        if client is not None:  # unknown ids are not cached: nobody can fill memory with them
            db.session.expunge(client)
            cache.put(client_id, client)
    return client


class _ClientCache:
    """Detached ``Client`` snapshots valid for one version of the store's client counter, or until
    the change channel says otherwise."""

    MAX_AGE = 300  # seconds; a bound even if a change message or the version key were lost

    def __init__(self) -> None:
        self.version: str | None = None
        self.items: dict[str, Client] = {}
        self.since = time.monotonic()
        self.watcher: Any = None
        self.watcher_pid: int | None = None

    def changed(self, message: str = "") -> None:
        """A client changed somewhere (or the subscription just began): drop every snapshot."""
        self.items = {}
        self.version = None
        self.since = time.monotonic()

    def fresh(self) -> None:
        if time.monotonic() - self.since > self.MAX_AGE:
            self.changed()

    def sync(self, version: str) -> None:
        if version != self.version or time.monotonic() - self.since > self.MAX_AGE:
            self.items.clear()
            self.version = version
            self.since = time.monotonic()

    def get(self, client_id: str) -> Client | None:
        return self.items.get(client_id)

    def put(self, client_id: str, client: Client) -> None:
        if len(self.items) > 10_000:  # more apps than the country has: start again rather than grow
            self.items.clear()
        self.items[client_id] = client


CLIENTS_VERSION_KEY = "oidc:clients-version"


CLIENTS_CHANNEL = "oidc:clients-changed"


def _client_cache() -> _ClientCache:
    """The process cache: trusted as long as this process listens to the change channel; else
    checked against the store's version once per request."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cache = app.extensions.setdefault("idp.client_cache", _ClientCache())
    if cache.watcher_pid != os.getpid():  # first use in this process (workers are forked)
        cache.watcher_pid = os.getpid()
        cache.changed()
        cache.watcher = store().listen(CLIENTS_CHANNEL, cache.changed)
    if cache.watcher is not None and cache.watcher.healthy:
        cache.fresh()
        return cache
    if has_request_context():
        req = request._get_current_object()  # type: ignore[attr-defined]
        if getattr(req, "_idp_clients_version", None) is None:
            req._idp_clients_version = _stored_version()
        cache.sync(req._idp_clients_version)
    else:  # a command or a test outside a request: always ask the store
        cache.sync(_stored_version())
    return cache


def _stored_version() -> str:
    return (store().get(CLIENTS_VERSION_KEY) or b"0").decode()


def clients_changed() -> None:
    """Forget every process's client snapshots (called after any write to a client row)."""
    version = secrets.token_hex(8)  # random: a value never comes back
    store().set(CLIENTS_VERSION_KEY, version, 30 * 86400)
    store().publish(CLIENTS_CHANNEL, version)
    cache = current_app.extensions.get("idp.client_cache")
    if cache is not None:
        cache.changed()
    if has_request_context():
        request._idp_clients_version = None  # type: ignore[attr-defined]


AUTHORIZE_PATHS = ("/oauth/authorize", "/oidc/v1/azp")


def redirect_target_of(next_url: str) -> str | None:
    """The registered redirect URI an authorization request (a login page's ``next``) will end
    at, or None: what the login page's CSP lets its form lead to."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(next_url)
    if parts.path not in AUTHORIZE_PATHS:
        return None
    args = parse_qs(parts.query)
    client = get_client((args.get("client_id") or [None])[0])
    uri = (args.get("redirect_uri") or [None])[0]
    return uri if client is not None and uri and client.check_redirect_uri(uri) else None


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_token() -> str:
    """256 random bits: unique even for two tokens in the same second for the same person."""
    return secrets.token_urlsafe(32)


@event.listens_for(Session, "after_flush")
def _watch_client_writes(session: Session, flush_context: Any) -> None:
    """Any client written (whoever wrote it: operator console, CLI, demo, a test) invalidates the
    snapshots at once, and again after the commit so that no process caches the old row in between."""
    if any(isinstance(obj, Client) for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info["idp_clients_changed"] = True
        clients_changed()


@event.listens_for(Session, "after_commit")
def _clients_committed(session: Session) -> None:
    if session.info.pop("idp_clients_changed", False) and has_app_context():
        clients_changed()


# -- authorization codes ---------------------------------------------------------------------
def save_code(code: str, data: dict[str, Any], batch: Batch | None = None, *, send: bool = True) -> None:
    """Store the code and its family marker (for replay detection) in one round trip, with whatever
    else ``batch`` holds (the session's list of apps). The nonce travels inside the code's data only:
    it is bound into the ID token, never checked for repeats (R-O4)."""
    lifetime = settings().code_lifetime
    key = hash_token(code)
    data = dict(data, exp=int(time.time()) + lifetime)
    batch = batch or store().batch()
    batch.set_json(CODE_KEY + key, data, lifetime)
    # Outlives the code: a code presented again after its redemption names the family to revoke.
    batch.set(CODE_FAMILY_KEY + key, data["family_id"], lifetime * 5)
    if send:  # else the caller's batch, sent by the caller
        batch.execute()


def peek_code(code: str) -> dict[str, Any] | None:
    """A live code's data, left in the store; None if unknown or expired.

    Issuing a code also wrote a marker naming its token family; a code presented when it is
    no longer there (already redeemed) revokes every token of that family and gets nothing.
    """
    key = hash_token(code)
    data = store().get_json(CODE_KEY + key)
    if data is None:
        _replayed(key)
        return None
    if data.get("exp", 0) <= int(time.time()):
        return None
    return data


def claim_code(code: str, session: str | None = None) -> tuple[bool, bool]:
    """Take a code out of the store, exactly once across processes: ``(taken, live)``. ``taken``
    is False (and the family revoked) when another request took it first; ``live`` says, in the
    same round trip, whether the sign-in ``session`` the code came from still holds (False
    without one)."""
    from idp.login import sessions

    key = hash_token(code)
    batch = store().batch().getdel(CODE_KEY + key)
    if session:
        sessions.queue_is_live(session, batch)
    taken, *live = batch.execute()
    if taken is None:
        _replayed(key)
        return False, False
    return True, bool(live and live[0] is not None)


def _replayed(key: str) -> None:
    family = store().get(CODE_FAMILY_KEY + key)
    if family is not None and revoke_family(family.decode()):
        audit.record(audit.CODE_REPLAYED, family_id=family.decode())


# -- tokens ----------------------------------------------------------------------------------
def save_token(token: dict[str, Any], client: Client, account_id: int | None, family_id: str,
               auth_time: int | None = None, sid: str | None = None, *, alone: bool = False) -> None:
    """Store the hashes of a new token pair (every sign-in, refresh and client_credentials grant).

    ``alone``: the row is the request's only write (a code or client_credentials grant), so on
    PostgreSQL it is written by itself, one INSERT in autocommit on the connection the thread keeps
    for statements that stand alone (``idp.db.run_alone``): one round trip instead of three
    (BEGIN, INSERT, COMMIT), and none of the session's machinery, which together were half of a
    client_credentials request's CPU (issue 11). It is durable when the answer leaves, like a
    committed transaction; if the request failed after it, the row is a token nobody holds.
    Otherwise (a refresh, which also marks its predecessor used) it joins the request's
    transaction, committed at the request's one edge.
    """
    now = int(time.time())
    refresh = token.get("refresh_token")
    row = dict(
        client_id=client.client_id,
        account_id=account_id,
        family_id=family_id,
        access_token_hash=hash_token(token["access_token"]),
        refresh_token_hash=hash_token(refresh) if refresh else None,
        scope=token.get("scope") or "",
        issued_at=now,
        expires_in=int(token["expires_in"]),
        refresh_expires_at=now + settings().refresh_token_lifetime if refresh else None,
        auth_time=auth_time,
        sid=sid,
        access_revoked=False,
        refresh_revoked=False,
        refresh_used=False,
    )
    engine = alone_engine() if alone else None
    if engine is not None:
        _insert_token_alone(engine, row)
    else:
        db.session.execute(Token.__table__.insert(), row)  # Core + bound parameters: a cached statement


@functools.cache
def _insert_token_sql(dialect: Any, columns: tuple[str, ...]) -> str:
    """The model's INSERT, compiled once for the driver (named parameters): no copy of the columns."""
    return str(Token.__table__.insert().inline().compile(dialect=dialect, column_keys=list(columns)))


def _insert_token_alone(engine: Engine, row: dict[str, Any]) -> None:
    """One autocommit INSERT through the driver (psycopg), on the connection this thread keeps for
    statements that stand alone (``idp.db.run_alone``). (Only when the session works on the pool: a
    test's session bound to one connection inside an outer transaction writes through the session,
    whose rows another connection could not see.)"""
    sql = _insert_token_sql(engine.dialect, tuple(row))
    run_alone(engine, sql, lambda driver: driver.execute(sql, row))


def find_token(value: str, hint: str | None = None) -> Token | None:
    """Look a presented token up by its hash; ``presented`` says which of the pair it was."""
    digest = hash_token(value)
    order = ["refresh_token", "access_token"] if hint == "refresh_token" else ["access_token", "refresh_token"]
    for kind in order:
        column = Token.access_token_hash if kind == "access_token" else Token.refresh_token_hash
        row = db.session.execute(db.select(Token).where(column == digest)).scalar_one_or_none()
        if row is not None:
            row.presented = kind
            return row
    return None


def claim_refresh_token(token: Token) -> bool:
    """Mark a refresh token used, atomically; False if it was already used or revoked."""
    result = db.session.execute(
        update(Token)
        .where(Token.id == token.id, Token.refresh_used.is_(False), Token.refresh_revoked.is_(False))
        .values(refresh_used=True)
    )
    return result.rowcount == 1


def revoke_family(family_id: str) -> int:
    """Revoke every access and refresh token of one family."""
    result = db.session.execute(
        update(Token).where(Token.family_id == family_id).values(access_revoked=True, refresh_revoked=True)
    )
    return result.rowcount


def revoke_session_tokens(public_sid: str) -> int:
    """A session's sign-out ends its tokens (OIDC Core §11): access tokens, and refresh tokens
    unless they were granted for ``offline_access`` (those outlive the session on purpose)."""
    session_tokens = Token.sid == public_sid
    offline = Token.scope.contains("offline_access")
    count = db.session.execute(update(Token).where(session_tokens, ~offline)
                               .values(access_revoked=True, refresh_revoked=True)).rowcount
    count += db.session.execute(update(Token).where(session_tokens, offline).values(access_revoked=True)).rowcount
    return count


def revoke_token(token: Token) -> None:
    """RFC 7009 §2.1: revoking a refresh token also revokes the access token issued with it."""
    token.access_revoked = True
    if token.presented == "refresh_token":
        token.refresh_revoked = True
    audit.record(audit.TOKEN_REVOKED, client_id=token.client_id, kind=token.presented,
                 family_id=token.family_id)


def revoke_account_tokens(account_id: int) -> int:
    """Every access and refresh token of one account, ``offline_access`` ones included: after a
    password reset nothing obtained with the old password keeps working (R-C4, R-N3)."""
    return db.session.execute(
        update(Token).where(Token.account_id == account_id,
                            (Token.access_revoked.is_(False)) | (Token.refresh_revoked.is_(False)))
        .values(access_revoked=True, refresh_revoked=True)
    ).rowcount


def revoke_client_tokens(account_id: int, client_id: str) -> int:
    result = db.session.execute(
        update(Token).where(Token.account_id == account_id, Token.client_id == client_id)
        .values(access_revoked=True, refresh_revoked=True)
    )
    return result.rowcount


# -- consent ---------------------------------------------------------------------------------
def _consent(account_id: int, client_id: str) -> Consent | None:
    return db.session.execute(
        db.select(Consent).filter_by(account_id=account_id, client_id=client_id)
    ).scalar_one_or_none()


def account_and_consent(account_id: int, client: Client) -> tuple[Any, str | None]:
    """The account and the scope it granted ``client`` before (None: never), read together (one
    statement; through ``accounts.services``, which owns how accounts are read)."""
    from idp.accounts.services import get_account_with

    return get_account_with(_account_and_consent_statement(), account_id, client_id=client.client_id)


@functools.cache
def _account_and_consent_statement() -> sa.Select:
    from idp.accounts.services import account_with_statement

    return account_with_statement(Consent.scope, lambda account_id_column: sa.and_(
        Consent.account_id == account_id_column, Consent.client_id == sa.bindparam("client_id")))


def granted_scope(account_id: int, client: Client) -> str | None:
    """The scope the account granted ``client`` before (None: never), for a request that holds the
    account already (``account_and_consent`` reads both)."""
    row = read_alone(_granted_statement(), {"account_id": account_id, "client_id": client.client_id})
    return row[0] if row is not None else None


@functools.cache
def _granted_statement() -> sa.Select:
    consent = Consent.__table__.c
    return sa.select(consent.scope).where(consent.account_id == sa.bindparam("account_id"),
                                          consent.client_id == sa.bindparam("client_id"))


def needs_consent(client: Client, scope: str, granted: str | None) -> bool:
    """Ask unless the client skips consent or every requested scope was granted before (``granted``:
    the consent's scope as ``account_and_consent`` read it)."""
    if client.skip_consent:
        return False
    return not set(scope.split()) <= set((granted or "").split())


def grant_consent(account: Any, client_id: str, scope: str) -> None:
    """Remember the scopes granted (added to any granted before); audited under the account's name,
    like its sign-ins."""
    row = _consent(account.id, client_id)
    if row is None:
        row = Consent(account_id=account.id, client_id=client_id, scope="")
        db.session.add(row)
    granted = list(dict.fromkeys(row.scope.split() + scope.split()))
    row.scope = " ".join(granted)
    audit.record(audit.CONSENT_GRANTED, actor=account.username, account_id=account.id, client_id=client_id,
                 scope=row.scope)


def list_consents(account_id: int) -> list[tuple[Consent, Client | None]]:
    rows = db.session.execute(
        db.select(Consent).filter_by(account_id=account_id).order_by(Consent.granted_at.desc())
    ).scalars()
    return [(row, get_client(row.client_id)) for row in rows]


def revoke_consent(account: Any, client_id: str) -> bool:
    """Forget the consent and revoke the client's tokens for this person; audited under the account's name."""
    row = _consent(account.id, client_id)
    if row is None:
        return False
    db.session.delete(row)
    count = revoke_client_tokens(account.id, client_id)
    audit.record(audit.CONSENT_REVOKED, actor=account.username, account_id=account.id, client_id=client_id,
                 tokens_revoked=count)
    return True


# -- signing keys ----------------------------------------------------------------------------
def rotate_signing_keys(actor: str, algs: tuple[str, ...] = ("RS256", "ES256")) -> list[tuple[str, str | None]]:
    """A new active key per algorithm, the previous one retired but still published; audited.
    The CLI and the operator console both come here."""
    pairs = current_app.extensions["idp.keys"].rotate(algs)
    for new_kid, old_kid in pairs:
        audit.record(audit.KEY_ROTATED, actor=actor, kid=new_kid, retired_kid=old_kid)
    return pairs


def retire_signing_key(actor: str, kid: str) -> None:
    """Retire one key now (raises ``keys.UnknownKey``); audited."""
    current_app.extensions["idp.keys"].retire(kid)
    audit.record(audit.KEY_RETIRED, actor=actor, kid=kid)
