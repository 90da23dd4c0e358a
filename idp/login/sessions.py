"""The SSO session (R-L1, R-L4, R-N2): one cookie, one store entry, shared by every process.

The cookie holds only a random session id; the session itself (who, when, how) lives in the
store under ``sso:<sid>``, so any app process behind the load balancer can read it and a
logout on one process ends it for all. The id changes at every sign-in (no session fixation).

The session id is a bearer credential: whoever holds it IS that person here. It therefore never
leaves the cookie and the store. Relying parties, ID tokens, logout tokens, the token table and
logs see only ``public_sid``, a keyed hash of it that cannot be turned back into the cookie.
Ending a session announces it (by its ``public_sid``) with the ``session_ended`` signal, which
the OIDC package uses for back-channel logout and to revoke the session's tokens.

The form session (``idp_session``, which holds the CSRF secret) is bound to the SSO session: it
is emptied at every sign-in and sign-out, and a form secret minted under another SSO session
(or none) is dropped before CSRF is checked, so a cookie planted by a sibling ``*.edu.tw`` site
cannot carry a token an attacker knows into a signed-in operator's browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from blinker import Namespace
from flask import Response, after_this_request, has_request_context, request, session, url_for

from idp.extensions import settings, store
from idp.identity import assurance
from idp.store import Batch

session_ended = Namespace().signal("session_ended")

@dataclass
class SsoSession:
    """Who is signed in, since when (``auth_time``), how (``amr``) and at what level (``acr``)."""

    sid: str
    account_id: int
    auth_time: int
    amr: list[str] = field(default_factory=lambda: [assurance.AMR_PASSWORD])
    acr: str = assurance.ACR_MEMBER

    @property
    def public_sid(self) -> str:
        """The ``sid`` relying parties see (OIDC Front/Back-Channel Logout): stable for this
        session, useless as a cookie."""
        return public_sid(self.sid)


def public_sid(sid: str) -> str:
    """HMAC of the session id under the service's secret key, in its own domain."""
    digest = hmac.new(settings().secret_key.encode(), b"sso-public-sid|" + sid.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


_SID_RE = re.compile(r"[A-Za-z0-9_-]{20,100}")


def _key(sid: str) -> str:
    return f"sso:{sid}"


def _clients_key(sid: str) -> str:
    return f"sso:{sid}:clients"


def _account_key(account_id: int) -> str:
    """The ids of the sessions an account has started (to end them all after a password reset)."""
    return f"sso-account:{account_id}"


def _cache() -> dict[str, Any]:
    """Per-request memo. Not ``flask.g``: g belongs to the app context, which a test (or a CLI
    command) may keep across several requests."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    if not hasattr(req, "_idp_sso"):
        req._idp_sso = {}
    return req._idp_sso


def carry(outer: Any, inner: Any) -> None:
    """Let a request object made within this request (``oidc.views.continue_after_sign_in``) see
    this request's session as it is now: a session just started is not in the cookie it was sent
    with. The memo is shared, not copied, so a cookie queued by either is the one sent."""
    if not hasattr(outer, "_idp_sso"):
        outer._idp_sso = {}
    inner._idp_sso = outer._idp_sso


def queue_is_live(sid: str, batch: Batch) -> None:
    """Is this session still signed in (not logged out, not ended by a password reset or by disabling
    its account)? Asked as part of ``batch``: its result is not None while the session holds."""
    batch.get(_key(sid))


def current_session() -> SsoSession | None:
    """The live session of this request's browser, or None (read once per request)."""
    cache = _cache()
    if "sso" in cache:
        return cache["sso"]
    sid = request.cookies.get(settings().sso_cookie)
    # Only ids we could have issued are looked up: a forged cookie such as ``<sid>:clients``
    # must not reach another key of the store.
    data = store().get_json(_key(sid)) if sid and _SID_RE.fullmatch(sid) else None
    sso = cache["sso"] = SsoSession(**data) if data else None
    return sso


def current_account() -> Any:
    """The signed-in, active account of this request, or None (read once per request, and only
    when something asks: the token and JWKS endpoints never pay for it).

    An account disabled while its session was live counts as signed out from then on.
    """
    cache = _cache()
    if "account" not in cache:
        from idp.accounts.services import get_account

        sso = current_session()
        account = get_account(sso.account_id) if sso else None
        cache["account"] = account if account is not None and account.is_active else None
    return cache["account"]


def account_in_hand() -> Any:
    """The current account if this request holds it already (it signed the person in, or asked
    ``current_account``), else None: whoever needs it can skip reading it again."""
    return _cache().get("account")


def _set_cookie(value: str | None) -> None:
    """Queue the SSO cookie for this response (``None`` deletes it); the last call wins, so a
    sign-in that replaces a session sends one Set-Cookie, not a deletion and a new value.

    A browser-session cookie (no Max-Age): on a shared school computer, closing the browser
    forgets it; the store entry's TTL (``sso_session_lifetime``) bounds it in any case.
    """
    cache = _cache()
    first = "cookie" not in cache
    cache["cookie"] = value
    if not first:
        return
    s = settings()

    @after_this_request
    def _cookie(resp: Response) -> Response:
        final = cache["cookie"]
        if final is None:
            resp.delete_cookie(s.sso_cookie, path="/", secure=s.secure_cookies, httponly=True,
                               samesite="Lax")
        else:
            resp.set_cookie(s.sso_cookie, final, path="/", secure=s.secure_cookies, httponly=True,
                            samesite="Lax")
        return resp


def create(account_id: int, auth_time: int | None = None, *, amr: list[str] | None = None,
           acr: str = assurance.ACR_MEMBER, batch: Batch | None = None, send: bool = True) -> SsoSession:
    """Write a new session record (no cookie): the one place a session comes into being. With
    ``batch``, together with what it holds already (one round trip); ``send=False`` leaves sending
    it to the caller."""
    sso = SsoSession(sid=secrets.token_urlsafe(32), account_id=account_id,
                     auth_time=auth_time or int(time.time()), amr=amr or [assurance.AMR_PASSWORD], acr=acr)
    lifetime = settings().sso_session_lifetime
    batch = (batch or store().batch()).set_json(_key(sso.sid), asdict(sso), lifetime).sadd(
        _account_key(account_id), sso.sid, lifetime)
    if send:
        batch.execute()
    return sso


def start_session(account: Any, amr: list[str] | None = None, acr: str | None = None, *,
                  batch: Batch | None = None, send: bool = True) -> SsoSession:
    """Sign ``account`` in: a new session id every time, replacing any session this browser had.
    The assurance level is decided now (``identity.assurance``) and kept with the session.

    The replaced session is ended like a logout (its relying parties are told through
    ``session_ended``): a relying party must never keep a session whose ``sid`` no longer
    exists here, and a different person signing in on a shared school computer must not
    inherit the previous person's apps.
    """
    previous = current_session()
    if previous is not None:
        end_session(previous.sid)
    sso = create(account.id, amr=amr, acr=acr or assurance.acr_for(account), batch=batch, send=send)
    if not send:  # the caller sends it; what else this request writes to the store may join it
        _cache()["unsent"] = batch
    _cache()["sso"] = sso
    _cache()["account"] = account if account.is_active else None
    _set_cookie(sso.sid)
    _renew_form_session(sso)
    return sso


def unsent_writes() -> Batch | None:
    """The store writes of a session started in this request and not sent yet
    (``start_session(send=False)``): whatever the request writes next may go with them, in the same
    round trip (an authorization answered by the login POST: its code, issue 11). Whoever started
    the session sends them; None when there are none."""
    return _cache().get("unsent") if has_request_context() else None


def send_unsent() -> None:
    """Send what ``start_session(send=False)`` left, with whatever joined it."""
    batch = _cache().pop("unsent", None)
    if batch is not None:
        batch.execute()


def add_client(sid: str, client_id: str, batch: Batch | None = None) -> None:
    """Remember that ``client_id`` received a code in this session (for logout); with ``batch``,
    as part of it (the code's own write), else at once."""
    if batch is not None:
        batch.sadd(_clients_key(sid), client_id, settings().sso_session_lifetime)
    else:
        store().sadd(_clients_key(sid), client_id, settings().sso_session_lifetime)


def end_session(sid: str) -> set[str]:
    """End the session everywhere; returns the clients that took part and announces it (by its
    public sid)."""
    data = store().get_json(_key(sid))
    clients = store().smembers(_clients_key(sid))
    store().delete(_key(sid), _clients_key(sid))
    if has_request_context():
        current = _cache().get("sso")
        if current is not None and current.sid == sid:
            _cache()["sso"] = None
            _cache()["account"] = None
            _set_cookie(None)
            _renew_form_session(None)
    session_ended.send(public_sid(sid), client_ids=clients, account_id=data["account_id"] if data else None)
    return clients


def end_account_sessions(account_id: int) -> int:
    """End every live session of one account, in every browser (a password reset: whoever knew the
    old password is signed out everywhere); returns how many. Each is ended like a logout, so its
    relying parties are told and its tokens revoked (``session_ended``). The account's set of
    session ids may hold sessions that ended already (the store has no set removal): skipped."""
    ended = 0
    for sid in sorted(store().smembers(_account_key(account_id))):
        data = store().get_json(_key(sid)) if _SID_RE.fullmatch(sid) else None
        if data is not None and data.get("account_id") == account_id:
            end_session(sid)
            ended += 1
    store().delete(_account_key(account_id))
    return ended


def sign_out_everywhere(account_id: Any, **_: Any) -> None:
    """``accounts.signals.password_reset`` / ``account_disabled``: sign the account out everywhere."""
    end_account_sessions(int(account_id))


# -- the form session, bound to the SSO session ----------------------------------------------
_BINDING_KEY = "sso_binding"
# What survives a sign-in: the language, and the OIDC package's note that an authorization request
# asked for this very sign-in (prompt=login, max_age), without which it would ask again.
_KEPT_ACROSS_SIGN_IN = ("locale", "oidc_reauth")


def _binding(sso: SsoSession | None) -> str:
    return sso.public_sid[:22] if sso is not None else "-"


def _renew_form_session(sso: SsoSession | None) -> None:
    """A fresh form session for a new (or no) SSO session: nothing planted before survives."""
    kept = {k: session[k] for k in _KEPT_ACROSS_SIGN_IN if k in session}
    session.clear()
    session.update(kept)
    session[_BINDING_KEY] = _binding(sso)


def bind_form_session() -> None:
    """Before CSRF is checked: drop a form secret minted under another SSO session than this
    request's. Only when the form session holds one, so pages without forms (and the JSON APIs)
    never pay for the store read."""
    if "csrf_token" not in session:
        return
    binding = _binding(current_session())
    if session.get(_BINDING_KEY) != binding:
        session.pop("csrf_token")
        session[_BINDING_KEY] = binding


def mark_form_session(resp: Response) -> Response:
    """After a page minted a form secret: record which SSO session it belongs to. Also when the form
    session named another one already: a sign-in leaves the form session bound to its SSO session
    without a secret, and when that SSO session ends by expiring in the store, not by a logout, the
    next login page mints a secret under no session (a secret present at the start of this request
    was checked then, ``bind_form_session``). Recording the old binding instead made that page's
    form fail its CSRF check once."""
    if "csrf_token" in session:
        binding = _binding(current_session())
        if session.get(_BINDING_KEY) != binding:
            session[_BINDING_KEY] = binding
    return resp


def safe_next(next_url: str | None, default: str = "/") -> str:
    """Only same-origin relative paths: never an open redirect (``idp.forms.safe_next``)."""
    from idp.forms import safe_next as _safe

    return _safe(next_url, default) or default


def login_url(next_url: str, *, force: bool = False, switch: bool = False, login_hint: str | None = None) -> str:
    """Where to send a person to sign in; afterwards the browser returns to ``next_url``.
    ``force`` asks for the password even with a live session; ``switch`` (``prompt=select_account``)
    also leaves the account field empty, for signing in as someone else."""
    parts = urlsplit(next_url)
    relative = parts.path + (f"?{parts.query}" if parts.query else "")
    params: dict[str, str] = {"next": relative}
    if force:
        params["force"] = "1"
    if switch:
        params["switch"] = "1"
    if login_hint:
        params["login_hint"] = login_hint[:64]
    return url_for("login.login") + "?" + urlencode(params)
