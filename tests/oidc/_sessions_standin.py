"""Stand-in for ``idp.login.sessions`` while the login package is written in parallel.

It implements exactly the agreed interface (SsoSession, current_session, login_url,
add_client, end_session, session_ended) on the real store and a cookie, so the OIDC tests
exercise real code paths. It is installed only when the real module is missing.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlencode

from blinker import Namespace
from flask import request

from idp.extensions import settings, store

session_ended = Namespace().signal("session_ended")


@dataclass
class SsoSession:
    sid: str
    account_id: int
    auth_time: int
    amr: list[str] = field(default_factory=lambda: ["pwd"])
    acr: str = ""


def _key(sid: str) -> str:
    return f"sso:{sid}"


def create(account_id: int, auth_time: int | None = None) -> SsoSession:
    sso = SsoSession(secrets.token_urlsafe(16), account_id, auth_time or int(time.time()))
    store().set_json(_key(sso.sid), asdict(sso), settings().sso_session_lifetime)
    return sso


def current_session() -> SsoSession | None:
    sid = request.cookies.get(settings().sso_cookie_name)
    data = store().get_json(_key(sid)) if sid else None
    return SsoSession(**data) if data else None


def login_url(next_url: str, *, force: bool = False, login_hint: str | None = None) -> str:
    params = {"next": next_url}
    if force:
        params["force"] = "1"
    if login_hint:
        params["login_hint"] = login_hint
    return "/login?" + urlencode(params)


def add_client(sid: str, client_id: str) -> None:
    store().sadd(f"sso-clients:{sid}", client_id, settings().sso_session_lifetime)


def end_session(sid: str) -> set[str]:
    data = store().get_json(_key(sid))
    clients = store().smembers(f"sso-clients:{sid}")
    store().delete(_key(sid), f"sso-clients:{sid}")
    session_ended.send(sid, client_ids=clients, account_id=data["account_id"] if data else None)
    return clients
