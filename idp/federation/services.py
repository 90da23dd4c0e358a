"""County-account sign-in as rules (R-L2, issue 12 items 2–4 and 6).

``begin`` sends the browser to the county with a fresh ``state``, ``nonce`` and PKCE verifier, kept
in the store and bound to this browser by the form session (the ``state`` is also in its cookie);
``finish`` takes the county's answer back, redeems the code once, verifies the ID token and turns the
county's subject into a person and an account:

1. the subject's federated link (keyed hash of issuer + subject) or, the first time, the person the
   county's own records list with that county account (``match_claim`` against 縣市帳號,
   ``identity.services.person_by_county_account``). When those records now name someone else for
   the account, the link moves to them (audited ``federation.relinked``);
2. the person must have an active affiliation at a school of that county: a pupil who left (moved,
   graduated) is refused, however valid the county still thinks the account is (SPEC R-L2);
3. their cloud account, or for a person without one a new cloud account, linked at once, named
   after the county and the county account (``ntpc.wangxm2016``; renamed later on the account page).

Services add and flush; the view commits. The county's ID token is kept in the store only for the
logout hint, for as long as the SSO session lives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import time
import unicodedata
import zoneinfo
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import current_app, session
from flask_babel import lazy_gettext as _l

from idp.errors import IdpError, NotFound
from idp.extensions import db, settings, store
from idp.federation.client import Answer, CountyAnswerRefused, CountyClient, CountyUnavailable, Federation
from idp.federation.models import FederatedLink
from idp.security import audit

log = logging.getLogger(__name__)

STATE_TTL = 600  # seconds a sign-in at the county may take
STATE_KEY = "fed_state"  # in the form session: the state this browser is waiting for
LOGOUT_TTL = 600
STATUS_TTL = 30 * 24 * 3600


# -- refusals, each with the county it is about ------------------------------------------------
class CountyError(IdpError):
    """A county sign-in that cannot go on; ``county`` is the county's name (臺北市…) for the page."""

    def __init__(self, county: str, reason: str = "", **data: Any) -> None:
        super().__init__(county=county, reason=reason, **data)
        self.county = county
        self.reason = reason


class CountyDown(CountyError):
    status = 503
    code = "county_unavailable"
    message = _l("The county's sign-in service cannot be reached right now.")


class SignInExpired(CountyError):
    status = 400
    code = "county_state"
    message = _l("This county sign-in was not started in this browser, or it took too long.")


class CountyCancelled(CountyError):
    status = 400
    code = "county_cancelled"
    message = _l("The sign-in at the county was cancelled or refused.")


class AnswerRefused(CountyError):
    status = 400
    code = "county_answer_refused"
    message = _l("The county's answer could not be verified, so you have not been signed in.")


class NotAtCountySchool(CountyError):
    status = 403
    code = "county_not_enrolled"
    message = _l("Your county account cannot be used here: the county's records do not list you at one of its "
                 "schools now.")


class AccountDisabled(CountyError):
    status = 403
    code = "account_disabled"
    message = _l("Your education cloud account has been disabled.")


# -- the registry ------------------------------------------------------------------------------
def federation() -> Federation:
    return current_app.extensions["idp.federation"]


def county_label(code: str) -> str:
    """The county's name in the school directory (新北市), else its code."""
    return county_labels([code])[code]


def county_labels(codes: list[str]) -> dict[str, str]:
    """County code → name in the school directory (one query), the code itself when it is not there."""
    from idp.schools.models import County

    names = dict(db.session.execute(sa.select(County.code, County.name).where(County.code.in_(codes))).all()) \
        if codes else {}
    return {code: names.get(code, code) for code in codes}


def client_for(name: str) -> CountyClient:
    client = federation().get(name)
    if client is None:
        raise NotFound()
    return client


@dataclass(frozen=True)
class CountyChoice:
    name: str
    label: str
    url: str


def counties(next_url: str = "/", ui_locales: str | None = None) -> list[CountyChoice]:
    """The counties the login page offers: only configured ones, by their name in the directory."""
    labels = county_labels([c.provider.county for c in federation()])
    params = {k: v for k, v in (("next", next_url if next_url and next_url != "/" else ""),
                                ("ui_locales", ui_locales or "")) if v}
    query = f"?{urlencode(params)}" if params else ""
    return [CountyChoice(c.name, labels[c.provider.county], f"/login/county/{c.name}{query}") for c in federation()]


# -- what operators see (any process): reachable, last error, logins today -----------------------
def _today() -> str:
    return dt.datetime.now(zoneinfo.ZoneInfo(settings().time_zone)).date().isoformat()


def _status_key(name: str) -> str:
    return f"fed:status:{name}"


def record_status(name: str, ok: bool, reason: str | None = None) -> None:
    """Remember the last contact with a county (never a token or a secret: ``reason`` is short)."""
    now = int(time.time())
    status = store().get_json(_status_key(name)) or {}
    status.update(reachable=ok, checked_at=now)
    if not ok:
        status.update(last_error=reason, last_error_at=now)
        log.warning("county %s: %s", name, reason)
    store().set_json(_status_key(name), status, STATUS_TTL)


def _count_login(name: str) -> None:
    store().incr(f"fed:logins:{name}:{_today()}", 2 * 24 * 3600)


def logins_today(name: str) -> int:
    raw = store().get(f"fed:logins:{name}:{_today()}")
    return int(raw) if raw else 0


# -- the sign-in --------------------------------------------------------------------------------
def begin(name: str, next_url: str, ui_locales: str | None = None) -> str:
    """The URL of the county's authorization request; ``CountyDown`` when it cannot be reached."""
    client = client_for(name)
    label = county_label(client.provider.county)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    try:
        auth = client.authorization(state=state, nonce=nonce, code_verifier=verifier, ui_locales=ui_locales)
    except CountyUnavailable as exc:
        record_status(name, False, exc.reason)
        raise CountyDown(label, exc.reason) from None
    record_status(name, True)
    store().set_json(f"fed:state:{state}", {"county": name, "nonce": nonce, "verifier": verifier,
                                            "next": next_url}, STATE_TTL)
    session[STATE_KEY] = state
    return auth.url


@dataclass(frozen=True)
class SignedIn:
    account: Any
    next_url: str
    answer: Answer
    county: str


def finish(name: str, args: Any) -> SignedIn:
    """The county's answer at our redirect URI → the account to sign in (see the module docstring)."""
    client = client_for(name)
    label = county_label(client.provider.county)
    state = args.get("state") or ""
    expected = session.pop(STATE_KEY, None)
    if not state or not expected or not hmac.compare_digest(str(expected), state):
        _refused(name, "state")
        raise SignInExpired(label, "state")
    data = store().getdel_json(f"fed:state:{state}")
    if not data or data.get("county") != name:
        _refused(name, "state")
        raise SignInExpired(label, "state")
    if args.get("error"):
        reason = "county_error:" + re.sub(r"[^a-z_]", "", str(args["error"]))[:40]
        _refused(name, reason)
        raise CountyCancelled(label, reason)
    if args.get("iss") is not None and args.get("iss") != client.provider.issuer:  # RFC 9207: mix-up
        _refused(name, "iss_parameter")
        raise AnswerRefused(label, "iss_parameter")
    code = args.get("code")
    if not code:
        _refused(name, "no_code")
        raise AnswerRefused(label, "no_code")
    try:
        answer = client.redeem(code, data["verifier"], data["nonce"])
    except CountyUnavailable as exc:
        record_status(name, False, exc.reason)
        raise CountyDown(label, exc.reason) from None
    except CountyAnswerRefused as exc:
        record_status(name, True)
        store_error(name, exc.reason)
        _refused(name, exc.reason)
        raise AnswerRefused(label, exc.reason) from None
    record_status(name, True)
    account_value = answer.claims.get(client.provider.match_claim)
    account_value = str(account_value) if isinstance(account_value, str | int) and str(account_value) else None
    person = resolve_person(client, answer.subject, account_value)
    if person is None or not active_in_county(person, client.provider.county):
        _refused(name, "unknown_account" if person is None else "not_enrolled",
                 **({"person_id": person.id} if person is not None else {}))
        raise NotAtCountySchool(label, "not_enrolled")
    account = account_for(person, client, account_value or answer.subject)
    if not account.is_active:
        _refused(name, "account_disabled", account_id=account.id)
        raise AccountDisabled(label, "account_disabled")
    account.last_login_at = dt.datetime.now(dt.UTC)
    audit.record(audit.LOGIN_SUCCESS, actor=account.username, account_id=account.id, method="county", county=name)
    db.session.flush()
    return SignedIn(account=account, next_url=data.get("next") or "/", answer=answer, county=name)


def store_error(name: str, reason: str) -> None:
    """A refused answer is the county's mistake (or an attack): operators see it as the last error."""
    status = store().get_json(_status_key(name)) or {}
    status.update(last_error=reason, last_error_at=int(time.time()))
    store().set_json(_status_key(name), status, STATUS_TTL)
    log.warning("county %s: answer refused (%s)", name, reason)


def _refused(name: str, reason: str, **data: Any) -> None:
    audit.record(audit.FEDERATION_REFUSED, actor=f"county:{name}", county=name, reason=reason, **data)


def signed_in(sso: Any, result: SignedIn) -> None:
    """After the SSO session started: keep what the logout needs, count the sign-in."""
    store().set_json(f"fed:sso:{sso.public_sid}", {"county": result.county, "id_token": result.answer.id_token},
                     settings().sso_session_lifetime)
    _count_login(result.county)


# -- subject → person ----------------------------------------------------------------------------
def subject_hash(client: CountyClient, subject: str) -> str:
    """HMAC-SHA-256 of issuer and subject under the identity index key, in this module's own domain."""
    from idp.identity.protection import derive_key

    key = derive_key(settings().identity_index_key)
    message = b"idp.federation.subject.v1|" + client.provider.issuer.encode() + b"\0" + subject.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def resolve_person(client: CountyClient, subject: str, account_value: str | None) -> Any:
    """The person this county subject is: its link, checked against what the county's records say now."""
    from idp.identity import services as identity

    name = client.provider.name
    digest = subject_hash(client, subject)
    link = db.session.scalar(sa.select(FederatedLink).where(FederatedLink.provider == name,
                                                            FederatedLink.subject_hash == digest))
    listed = identity.person_by_county_account(client.provider.county, account_value) if account_value else None
    now = dt.datetime.now(dt.UTC)
    if link is None:
        if listed is None:
            return None
        db.session.add(FederatedLink(provider=name, subject_hash=digest, person_id=listed.id, last_login_at=now))
        audit.record(audit.FEDERATION_LINKED, actor=f"county:{name}", county=name, person_id=listed.id)
        db.session.flush()
        return listed
    if listed is not None and listed.id != link.person_id:
        # The county's records now give this account to someone else (an account name reissued):
        # the records are the trusted source, the old link is moved, and that is on the record.
        audit.record(audit.FEDERATION_RELINKED, actor=f"county:{name}", county=name, link_id=link.id,
                     was_person_id=link.person_id, person_id=listed.id)
        link.person_id = listed.id
    link.last_login_at = now
    db.session.flush()
    return listed if listed is not None else identity.get_person(link.person_id)


def active_in_county(person: Any, county_code: str) -> bool:
    """Does the person have an active affiliation at a school of this county (school directory)?"""
    from idp.schools.services import get_school

    codes = {a.school_code for a in person.affiliations if a.status == "active"}
    return any(school is not None and school.county_code == county_code
               for school in (get_school(code) for code in sorted(codes)))


# -- the account ----------------------------------------------------------------------------------
def derived_username(county_name: str, account: str) -> str:
    """``<county>.<account>`` within the account-name rule (lower-case letters, digits, '.', '_', '-';
    6–30): other characters become '-', too long is cut, too short is padded with '0'."""
    tail = re.sub(r"[^a-z0-9._-]+", "-", unicodedata.normalize("NFKC", account).lower()).strip("-.")
    base = f"{county_name}.{tail}"[:30].rstrip("-.") if tail else county_name
    return base.ljust(6, "0")


def account_for(person: Any, client: CountyClient, account_value: str) -> Any:
    """The person's cloud account; for a person without one, a new one, linked, without a password
    (they sign in with the county; 忘記密碼 with their personal data gives them one)."""
    from idp.accounts import services as accounts
    from idp.identity import services as identity

    existing = accounts.get_account(person.account_id)
    if existing is not None:
        return existing
    base = derived_username(client.provider.name, account_value)
    actor = f"county:{client.provider.name}"
    for n in range(1, 100):
        suffix = "" if n == 1 else f"-{n}"
        candidate = base[:30 - len(suffix)] + suffix
        try:
            accounts.check_username(candidate)
        except accounts.UsernameTaken:
            continue
        account = accounts.create_account(candidate, None, name=person.name, kind="cloud", actor=actor)
        break
    else:  # pragma: no cover - a hundred names taken: a random tail
        candidate = base[:23] + "-" + secrets.token_hex(3)
        account = accounts.create_account(candidate, None, name=person.name, kind="cloud", actor=actor)
    identity.link_account(person, account, actor=actor)
    return account


# -- logout ---------------------------------------------------------------------------------------
def session_county(public_sid: str) -> dict[str, Any] | None:
    """The county sign-in behind an SSO session, if it was one (``county``, ``id_token``)."""
    return store().get_json(f"fed:sso:{public_sid}")


def forget_session(public_sid: str) -> dict[str, Any] | None:
    return store().getdel_json(f"fed:sso:{public_sid}")


def logout_continuation(county: str, then: str | None) -> str:
    """Remember where a logout goes once the county has been passed through; the key is the ``state``."""
    key = secrets.token_urlsafe(24)
    store().set_json(f"fed:logout:{key}", {"county": county, "then": then}, LOGOUT_TTL)
    return key


def take_continuation(county: str, key: str | None) -> str | None:
    """Where to go after the county's logout (a URL our end-session endpoint chose), or None."""
    if not key:
        return None
    data = store().getdel_json(f"fed:logout:{key}")
    if not data or data.get("county") != county:
        return None
    return data.get("then")


# -- the console ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CountyState:
    name: str
    county: str
    label: str
    issuer: str
    client_id: str
    scopes: str
    match_claim: str
    redirect_uri: str
    post_logout_redirect_uri: str
    reachable: bool | None
    checked_at: dt.datetime | None
    last_error: str | None
    last_error_at: dt.datetime | None
    logins_today: int
    links: int


def _when(ts: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(ts), dt.UTC) if ts else None


def states() -> list[CountyState]:
    """Every configured county with what the last contact said (from any process)."""
    counts = dict(db.session.execute(sa.select(FederatedLink.provider, sa.func.count())
                                     .group_by(FederatedLink.provider)).all())
    labels = county_labels([c.provider.county for c in federation()])
    out = []
    for client in federation():
        p = client.provider
        status = store().get_json(_status_key(p.name)) or {}
        out.append(CountyState(
            name=p.name, county=p.county, label=labels[p.county], issuer=p.issuer, client_id=p.client_id,
            scopes=p.scopes, match_claim=p.match_claim, redirect_uri=client.redirect_uri,
            post_logout_redirect_uri=client.post_logout_redirect_uri, reachable=status.get("reachable"),
            checked_at=_when(status.get("checked_at")), last_error=status.get("last_error"),
            last_error_at=_when(status.get("last_error_at")), logins_today=logins_today(p.name),
            links=int(counts.get(p.name, 0))))
    return out


def check_now(name: str) -> bool:
    """Fetch a county's discovery document and keys now; True when both came."""
    client = client_for(name)
    try:
        client.check()
    except CountyUnavailable as exc:
        record_status(name, False, exc.reason)
        return False
    record_status(name, True)
    return True


@dataclass(frozen=True)
class LinkView:
    id: int
    provider: str
    label: str
    created_at: dt.datetime
    last_login_at: dt.datetime | None


def links_of_person(person_id: int) -> list[LinkView]:
    by_code = county_labels([c.provider.county for c in federation()])
    labels = {c.name: by_code[c.provider.county] for c in federation()}
    rows = db.session.scalars(sa.select(FederatedLink).where(FederatedLink.person_id == person_id)
                              .order_by(FederatedLink.id))
    return [LinkView(r.id, r.provider, labels.get(r.provider, r.provider), r.created_at, r.last_login_at) for r in rows]


def unlink(link_id: int, *, actor: str, person_id: int | None = None) -> FederatedLink:
    """Remove a federated link (an operator, e.g. after a county reissued an account); audited. The
    next sign-in with that county account links again only if the county's records list the person."""
    link = db.session.get(FederatedLink, link_id)
    if link is None or (person_id is not None and link.person_id != person_id):
        raise NotFound()
    audit.record(audit.FEDERATION_UNLINKED, actor=actor, county=link.provider, person_id=link.person_id,
                 link_id=link.id)
    db.session.delete(link)
    db.session.flush()
    return link
