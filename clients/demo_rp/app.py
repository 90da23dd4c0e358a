"""The demo relying party's Flask app: configuration, sign-in, claims, refresh, logout.

Configuration comes from the environment, each key falling back to the env file that
``flask --app wsgi demo load`` writes (``instance/demo_rp.env``, or ``DEMO_RP_ENV_FILE``):

- ``DEMO_RP_ISSUER``: the provider's issuer; discovery is ``<issuer>/.well-known/openid-configuration``
- ``DEMO_RP_CLIENT_ID`` / ``DEMO_RP_CLIENT_SECRET``: the registration
- ``DEMO_RP_BASE_URL``: where this app is served (redirect URI ``<base>/callback``)

Tokens are kept in this process's memory, keyed by a random id in this app's own cookie
(``demo_rp_session``): the provider on the same host uses other cookie names, and a demo needs
no database. A back-channel logout token from the provider ends every local session that
belongs to the provider's session id (``sid``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, abort, redirect, render_template, request, session, url_for
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ENV_FILE = ROOT / "instance" / "demo_rp.env"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
KEYS = ("DEMO_RP_ISSUER", "DEMO_RP_CLIENT_ID", "DEMO_RP_CLIENT_SECRET", "DEMO_RP_BASE_URL")
# Times are shown where the demo's readers are (DEMO_RP_TIME_ZONE to change it).
TIME_ZONE = os.environ.get("DEMO_RP_TIME_ZONE") or "Asia/Taipei"
TIME_CLAIMS = ("iat", "auth_time", "exp", "nbf", "updated_at")


def read_config(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The four settings: environment first, then the env file written by ``demo load``."""
    environ = dict(os.environ if environ is None else environ)
    path = Path(environ.get("DEMO_RP_ENV_FILE") or DEFAULT_ENV_FILE)
    file_values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                file_values[key.strip()] = value.strip()
    defaults = {"DEMO_RP_ISSUER": "http://127.0.0.1:5000", "DEMO_RP_CLIENT_ID": "demo-rp",
                "DEMO_RP_BASE_URL": "http://127.0.0.1:5001"}
    out = {key: environ.get(key) or file_values.get(key) or defaults.get(key, "") for key in KEYS}
    if not out["DEMO_RP_CLIENT_SECRET"]:
        raise RuntimeError(f"no DEMO_RP_CLIENT_SECRET: run `flask --app wsgi demo load` first (reads {path})")
    out["DEMO_RP_BASE_URL"] = out["DEMO_RP_BASE_URL"].rstrip("/")
    out["DEMO_RP_ISSUER"] = out["DEMO_RP_ISSUER"].rstrip("/")
    return out


class Sessions:
    """Signed-in visitors of this demo, in memory: local id → tokens and what the provider said."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {}

    def new(self, record: dict[str, Any]) -> str:
        key = secrets.token_urlsafe(24)
        with self._lock:
            self._data[key] = record
        return key

    def get(self, key: str | None) -> dict[str, Any] | None:
        with self._lock:
            return self._data.get(key) if key else None

    def drop(self, key: str | None) -> None:
        with self._lock:
            self._data.pop(key or "", None)

    def end_by_sid(self, sid: str | None, sub: str | None) -> int:
        """Mark every session of the provider's ``sid`` (or of ``sub`` without sid) as ended."""
        n = 0
        with self._lock:
            for record in self._data.values():
                claims = record.get("id_claims", {})
                if (sid and claims.get("sid") == sid) or (not sid and sub and claims.get("sub") == sub):
                    record["ended_by_provider"] = True
                    n += 1
        return n


def create_app(environ: dict[str, str] | None = None) -> Flask:
    """Build the demo app from the environment (or the given mapping)."""
    config = read_config(environ)
    app = Flask(__name__)
    app.config.update(config)
    app.config.update(SECRET_KEY=secrets.token_hex(32), SESSION_COOKIE_NAME="demo_rp_session",
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=config["DEMO_RP_CLIENT_ID"],
        client_secret=config["DEMO_RP_CLIENT_SECRET"],
        server_metadata_url=config["DEMO_RP_ISSUER"] + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email eduinfo guid", "code_challenge_method": "S256",
                       "token_endpoint_auth_method": "client_secret_basic"},
    )
    store = Sessions()
    app.extensions["demo_rp.sessions"] = store
    base = config["DEMO_RP_BASE_URL"]

    def fetch_eduinfo(token: dict[str, Any]) -> dict[str, Any] | None:
        """The ministry-style education resource, with school names from the provider's directory."""
        issuer = config["DEMO_RP_ISSUER"]
        try:
            resp = oauth.idp.get(issuer + "/moeresource/api/v1/oidc/eduinfo", token=token, timeout=5)
            if resp.status_code != 200:
                return None
            data = resp.json()
            codes = {data.get("schoolid")} | {t.get("schoolid") for t in data.get("titles", [])}
            names = {}
            for code in sorted(c for c in codes if c):
                school = requests.get(f"{issuer}/api/schools/{code}", timeout=5)
                if school.status_code == 200:
                    names[code] = school.json().get("name", "")
            data["school_names"] = names
            return data
        except (requests.RequestException, ValueError):
            app.logger.warning("could not read eduinfo from the provider")
            return None

    def current() -> dict[str, Any] | None:
        record = store.get(session.get("sid"))
        if record is not None and record.get("ended_by_provider"):
            store.drop(session.pop("sid", None))
            session["notice"] = "ended"
            return None
        return record

    @app.get("/")
    def index() -> Any:
        record = current()
        notice = session.pop("notice", None)
        logout_state = session.pop("logout_state", None)
        if logout_state and request.args.get("state") == logout_state:
            notice = "signed_out"  # back from the provider's end_session_endpoint
        if record is None:
            return render_template("index.html", notice=notice, issuer=config["DEMO_RP_ISSUER"])
        token = record["token"]
        return render_template("signed_in.html", record=record, notice=notice,
                               expires_at=local_time(token["expires_at"]), zone=TIME_ZONE,
                               id_claims=readable(record["id_claims"]), userinfo=readable(record["userinfo"]),
                               claim_times=claim_times(record["id_claims"]), issuer=config["DEMO_RP_ISSUER"])

    @app.post("/login")
    def login() -> Any:
        return oauth.idp.authorize_redirect(base + "/callback", nonce=secrets.token_urlsafe(16))

    @app.get("/callback")
    def callback() -> Any:
        try:
            token = oauth.idp.authorize_access_token()
        except OAuthError as exc:
            return render_template("error.html", error=exc.error, description=exc.description), 400
        claims = dict(token.get("userinfo") or {})
        userinfo = dict(oauth.idp.userinfo(token=token))
        token["expires_at"] = int(token.get("expires_at") or time.time() + int(token.get("expires_in", 0)))
        store.drop(session.get("sid"))
        session["sid"] = store.new({"token": dict(token), "id_claims": claims, "userinfo": userinfo,
                                    "eduinfo": fetch_eduinfo(token), "refreshed": 0})
        return redirect(url_for("index"))

    @app.post("/refresh")
    def refresh() -> Any:
        record = current()
        if record is None:
            return redirect(url_for("index"))
        try:
            new = oauth.idp.fetch_access_token(grant_type="refresh_token",
                                               refresh_token=record["token"]["refresh_token"])
        except OAuthError as exc:
            return render_template("error.html", error=exc.error, description=exc.description), 400
        new = dict(new)
        new["expires_at"] = int(new.get("expires_at") or time.time() + int(new.get("expires_in", 0)))
        new.setdefault("id_token", record["token"].get("id_token"))
        record["token"] = new
        record["refreshed"] += 1
        record["userinfo"] = dict(oauth.idp.userinfo(token=new))
        record["eduinfo"] = fetch_eduinfo(new)
        session["notice"] = "refreshed"
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout() -> Any:
        record = current()
        sid = session.pop("sid", None)
        store.drop(sid)
        if record is None:
            return redirect(url_for("index"))
        end_session = oauth.idp.load_server_metadata().get("end_session_endpoint")
        state = session["logout_state"] = secrets.token_urlsafe(12)
        params = {"id_token_hint": record["token"].get("id_token", ""), "post_logout_redirect_uri": base + "/",
                  "client_id": config["DEMO_RP_CLIENT_ID"], "state": state}
        # POSTed by the browser (RP-Initiated Logout §2 allows it) so the ID token never lands in a URL,
        # and with it in access logs and browser history.
        return render_template("logout.html", action=end_session, params=params,
                               issuer=config["DEMO_RP_ISSUER"])

    @app.post("/backchannel-logout")
    def backchannel_logout() -> Any:
        """OIDC Back-Channel Logout 1.0 §2.5–2.8: validate the logout token, end matching sessions."""
        raw = request.form.get("logout_token")
        if not raw:
            abort(400)
        try:
            claims = validate_logout_token(raw, oauth, config)
        except (JoseError, ValueError) as exc:
            app.logger.warning("rejected a logout token: %s", type(exc).__name__)
            return {"error": "invalid_request"}, 400
        store.end_by_sid(claims.get("sid"), claims.get("sub"))
        return "", 200, {"Cache-Control": "no-store"}

    return app


def local_time(epoch: int | float) -> str:
    """A Unix time as a person reads it: ``2026-12-02 10:47:12`` in the demo's time zone."""
    return dt.datetime.fromtimestamp(epoch, ZoneInfo(TIME_ZONE)).strftime("%Y-%m-%d %H:%M:%S")


def readable(claims: dict[str, Any]) -> str:
    """Claims as indented JSON (what a developer reads in the spec), not a Python dict's repr."""
    return json.dumps(claims, ensure_ascii=False, indent=2, sort_keys=True)


def claim_times(claims: dict[str, Any]) -> list[tuple[str, str, int]]:
    """The ID token's time claims (iat, exp, auth_time...) as local dates beside their Unix values."""
    return [(name, local_time(claims[name]), claims[name]) for name in TIME_CLAIMS
            if isinstance(claims.get(name), (int, float)) and not isinstance(claims.get(name), bool)]


def validate_logout_token(raw: str, oauth: OAuth, config: dict[str, str]) -> dict[str, Any]:
    """Signature against the provider's JWKS (re-fetched once on an unknown kid), then the claims."""
    header = jws.extract_compact(raw.encode()).protected  # a malformed token fails here, before any fetch
    if header.get("typ") not in (None, "logout+jwt") or header.get("alg") not in ("RS256", "ES256"):
        raise ValueError("unexpected logout token header")
    try:
        token = jwt.decode(raw, KeySet.import_key_set(oauth.idp.fetch_jwk_set()), algorithms=["RS256", "ES256"])
    except JoseError:
        token = jwt.decode(raw, KeySet.import_key_set(oauth.idp.fetch_jwk_set(force=True)),
                           algorithms=["RS256", "ES256"])
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(iss={"essential": True, "value": config["DEMO_RP_ISSUER"]},
                                     aud={"essential": True, "value": config["DEMO_RP_CLIENT_ID"]},
                                     iat={"essential": True}, leeway=60)
    registry.validate(claims)
    if BACKCHANNEL_EVENT not in (claims.get("events") or {}) or "nonce" in claims:
        raise ValueError("not a logout token")
    if not claims.get("sid") and not claims.get("sub"):
        raise ValueError("logout token without sid or sub")
    return claims
