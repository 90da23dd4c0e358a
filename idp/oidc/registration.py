"""Relying-party registrations: the rules every door applies (R-O3).

The console and the ``flask clients`` commands both come here, so a registration is checked by
one set of rules whichever door it came through:

- redirect, post-logout and back-channel URIs are absolute, exact strings (no fragment, no
  wildcard) and https unless they point at this machine (RFC 8252 §7.3 loopback for native
  apps and development); an open redirect starts with a lax registration;
- a confidential client gets a 256-bit secret that is shown once and stored only as a hash;
  a public client (``none``) has no secret, must use PKCE and cannot use client_credentials;
  ``private_key_jwt`` needs the client's public keys (``jwks`` or ``jwks_uri``);
- scopes, grant types, algorithms and subject types are limited to what discovery advertises;
- a ministry-compatible registration (R-O4: an app moving over from the ministry's service) is
  registered for the ministry's scopes and, unless the operator chose otherwise, sees UUID subjects.

Every change is audited; a secret never enters the audit data or a log line.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from joserfc.jwk import KeySet

from idp.errors import InvalidField, NotFound
from idp.extensions import db
from idp.oidc import claims
from idp.oidc.models import Client, Consent, Token
from idp.security import audit

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
ID_TOKEN_ALGS = ("RS256", "ES256")
SUBJECT_TYPES = ("pairwise", "public")
SUBJECT_FORMATS = ("opaque", "uuid")
# The scopes apps written for the ministry's service ask for (R-O4; docs/ministry-compatibility.md).
MINISTRY_SCOPES = ("openid", "profile", "email", "eduinfo", "openid2", "educloudroles", "personid")
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,63}")
LOOPBACK_HOSTS = ("localhost",)

# Every registration field an operator sets, with its default for a new client.
DEFAULTS: dict[str, Any] = {
    "name": "",
    "redirect_uris": [],
    "post_logout_redirect_uris": [],
    "backchannel_logout_uri": None,
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid profile email",
    "token_endpoint_auth_method": "client_secret_basic",
    "jwks": None,
    "jwks_uri": None,
    "id_token_signed_response_alg": "RS256",
    "subject_type": "pairwise",
    "sector_identifier": None,
    "require_real_name": False,
    "skip_consent": False,
    "ministry_compatible": False,
    "subject_format": "",  # "": decided by ministry_compatible (uuid) or not (opaque)
}
FIELDS = tuple(DEFAULTS)


class InvalidRegistration(InvalidField):
    """A registration an operator typed breaks a rule; ``field`` names the input to fix."""

    code = "invalid_client_metadata"  # RFC 7591 §3.2.2


@dataclass(frozen=True)
class Registered:
    """A client after a change, and its new secret in clear when one was made (shown once)."""

    client: Client
    secret: str | None = None


# -- reading ---------------------------------------------------------------------------------
def list_clients() -> list[Client]:
    return list(db.session.scalars(sa.select(Client).order_by(Client.name, Client.client_id)))


def get_client(client_id: str) -> Client:
    """The client row, attached to the session (for editing; OIDC requests use snapshots)."""
    client = db.session.scalar(sa.select(Client).where(Client.client_id == client_id))
    if client is None:
        raise NotFound(_l("There is no app with client ID %(client_id)s.", client_id=client_id))
    return client


def describe(client: Client) -> dict[str, Any]:
    """The registration as plain data (the CLI's ``--json``); never the secret or its hash."""
    out = {"client_id": client.client_id, **{f: _plain(getattr(client, f)) for f in FIELDS},
           "response_types": list(client.response_types or []),
           "has_secret": bool(client.client_secret_hash),
           "created_at": client.created_at.isoformat() if client.created_at else None,
           "updated_at": client.updated_at.isoformat() if client.updated_at else None}
    return out


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


# -- validation ------------------------------------------------------------------------------
def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_uri(field: str, uri: str) -> str:
    """One absolute, exact URI: https, or http to this machine only; no fragment, no wildcard."""
    uri = (uri or "").strip()
    if not uri:
        raise InvalidRegistration(field, _l("An address is empty."))
    if len(uri) > 500:
        raise InvalidRegistration(field, _l("%(uri)s is longer than 500 characters.", uri=uri[:60] + "…"))
    if any(ord(c) < 33 for c in uri) or "*" in uri:
        raise InvalidRegistration(field, _l("%(uri)s contains spaces, control characters or a wildcard: "
                                            "addresses are matched exactly.", uri=uri))
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidRegistration(field, _l("%(uri)s is not an absolute https address.", uri=uri))
    if parts.fragment or uri.endswith("#"):
        raise InvalidRegistration(field, _l("%(uri)s has a fragment (#…); OAuth does not allow one.", uri=uri))
    if parts.username or parts.password:
        raise InvalidRegistration(field, _l("%(uri)s contains a user name or password.", uri=uri))
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidRegistration(field, _l("%(uri)s must use https (plain http only for 127.0.0.1, ::1 "
                                            "or localhost).", uri=uri))
    return uri


def _server_to_server_uri(field: str, uri: str) -> str:
    """An address THIS server will call (back-channel logout): in production never one on loopback
    or a private network, or registering an app would be a way to make the provider call into its
    own network (the delivery checks the resolved address again)."""
    uri = check_uri(field, uri)
    from idp.extensions import settings

    if settings().is_production:
        host = urlsplit(uri).hostname or ""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            internal = _is_loopback(host) or host.endswith((".local", ".internal", ".localhost"))
        else:
            internal = not ip.is_global
        if internal:
            raise InvalidRegistration(field, _l("%(uri)s points at a loopback or private address: the service "
                                                "calls this address itself, so it must be public.", uri=uri))
    return uri


def _uri_list(field: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split()
    uris = [check_uri(field, u) for u in (value or []) if u and u.strip()]
    return list(dict.fromkeys(uris))


def _choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidRegistration(field, _l("%(value)s is not one of: %(allowed)s.", value=value,
                                            allowed=", ".join(allowed)))
    return value


def _jwks(value: Any) -> dict[str, Any] | None:
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidRegistration("jwks", _l("The key set is not valid JSON.")) from exc
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        raise InvalidRegistration("jwks", _l('The key set must be a JSON object with a non-empty "keys" list.'))
    try:
        keys = KeySet.import_key_set(value)
    except Exception as exc:  # joserfc raises several types for malformed keys
        raise InvalidRegistration("jwks", _l("The key set holds a key that cannot be read.")) from exc
    if any(k.is_private for k in keys.keys):
        raise InvalidRegistration("jwks", _l("The key set holds a private key: register only public keys."))
    return {"keys": [k.as_dict(private=False) for k in keys.keys]}


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """A complete registration checked against every rule; raises ``InvalidRegistration``."""
    out = dict(DEFAULTS)
    out.update({k: v for k, v in data.items() if k in FIELDS})
    name = (out["name"] or "").strip()
    if not name:
        raise InvalidRegistration("name", _l("Give the app a name people will recognise on the consent page."))
    if len(name) > 200:
        raise InvalidRegistration("name", _l("The name is longer than 200 characters."))
    if any(ord(c) < 32 for c in name):
        raise InvalidRegistration("name", _l("The name contains control characters."))
    out["name"] = name
    grants = out["grant_types"]
    grants = grants.split() if isinstance(grants, str) else list(grants or [])
    for g in grants:
        _choice("grant_types", g, GRANT_TYPES)
    if not grants:
        raise InvalidRegistration("grant_types", _l("Choose at least one grant type."))
    if "refresh_token" in grants and "authorization_code" not in grants:
        raise InvalidRegistration("grant_types", _l("Refresh tokens come only with the authorization code grant."))
    out["grant_types"] = [g for g in GRANT_TYPES if g in grants]
    method = _choice("token_endpoint_auth_method", out["token_endpoint_auth_method"], AUTH_METHODS)
    if method == "none" and "client_credentials" in grants:
        raise InvalidRegistration("grant_types", _l("A public client (no secret) cannot use client credentials."))
    out["redirect_uris"] = _uri_list("redirect_uris", out["redirect_uris"])
    if "authorization_code" in grants and not out["redirect_uris"]:
        raise InvalidRegistration("redirect_uris", _l("The authorization code grant needs at least one "
                                                      "redirect URI."))
    out["post_logout_redirect_uris"] = _uri_list("post_logout_redirect_uris", out["post_logout_redirect_uris"])
    bc = (out["backchannel_logout_uri"] or "").strip()
    out["backchannel_logout_uri"] = _server_to_server_uri("backchannel_logout_uri", bc) if bc else None
    jwks_uri = (out["jwks_uri"] or "").strip()
    out["jwks_uri"] = check_uri("jwks_uri", jwks_uri) if jwks_uri else None
    out["jwks"] = _jwks(out["jwks"])
    if method == "private_key_jwt" and not (out["jwks"] or out["jwks_uri"]):
        raise InvalidRegistration("jwks", _l("private_key_jwt needs the client's public keys: a key set or "
                                             "a key set URL."))
    scopes = out["scope"].split() if isinstance(out["scope"], str) else list(out["scope"] or [])
    known = claims.scopes_supported()
    for s in scopes:
        if s not in known:
            raise InvalidRegistration("scope", _l("Unknown scope %(scope)s; this provider has: %(known)s.",
                                                  scope=s, known=" ".join(known)))
    if "authorization_code" in grants and "openid" not in scopes:
        raise InvalidRegistration("scope", _l("A sign-in app needs the openid scope."))
    out["scope"] = " ".join(s for s in known if s in scopes)
    out["id_token_signed_response_alg"] = _choice("id_token_signed_response_alg",
                                                  out["id_token_signed_response_alg"], ID_TOKEN_ALGS)
    out["subject_type"] = _choice("subject_type", out["subject_type"], SUBJECT_TYPES)
    sector = (out["sector_identifier"] or "").strip()
    out["sector_identifier"] = check_uri("sector_identifier", sector) if sector else None
    out["require_real_name"] = bool(out["require_real_name"])
    out["skip_consent"] = bool(out["skip_consent"])
    out["ministry_compatible"] = bool(out["ministry_compatible"])
    if out["ministry_compatible"]:
        out["scope"] = " ".join(s for s in known if s in set(out["scope"].split()) | set(MINISTRY_SCOPES))
    fmt = out["subject_format"] or ("uuid" if out["ministry_compatible"] else "opaque")
    out["subject_format"] = _choice("subject_format", fmt, SUBJECT_FORMATS)
    return out


# -- changing --------------------------------------------------------------------------------
def new_secret() -> str:
    return secrets.token_urlsafe(32)


def create_client(data: dict[str, Any], actor: str, client_id: str | None = None) -> Registered:
    """Register an app; a confidential one gets its secret here, returned in clear this once."""
    values = validate(data)
    if client_id:
        client_id = client_id.strip()
        if not CLIENT_ID_RE.fullmatch(client_id):
            raise InvalidRegistration("client_id", _l("A client ID is 3–64 letters, digits, dots, dashes or "
                                                      "underscores."))
        if db.session.scalar(sa.select(Client.id).where(Client.client_id == client_id)) is not None:
            raise InvalidRegistration("client_id", _l("Client ID %(client_id)s is taken.", client_id=client_id))
    client = Client(client_id=client_id or secrets.token_hex(16), response_types=["code"], **values)
    secret = new_secret() if values["token_endpoint_auth_method"] in SECRET_METHODS else None
    client.set_secret(secret)
    db.session.add(client)
    db.session.flush()
    audit.record(audit.CLIENT_CREATED, actor=actor, client_id=client.client_id, **_audit_fields(values))
    return Registered(client, secret)


def update_client(client_id: str, data: dict[str, Any], actor: str) -> Registered:
    """Change the given fields (the rest stay); moving to a secret method makes a secret, moving
    away from one drops it. Every process stops using the old registration at once."""
    client = get_client(client_id)
    current = {f: getattr(client, f) for f in FIELDS}
    values = validate({**current, **{k: v for k, v in data.items() if k in FIELDS}})
    changed = sorted(f for f in FIELDS if _plain(values[f]) != _plain(current[f]))
    for f in changed:
        setattr(client, f, values[f])
    secret = None
    method = values["token_endpoint_auth_method"]
    if method in SECRET_METHODS and not client.client_secret_hash:
        secret = new_secret()
        client.set_secret(secret)
    elif method not in SECRET_METHODS and client.client_secret_hash:
        client.set_secret(None)
    if changed or secret:
        audit.record(audit.CLIENT_UPDATED, actor=actor, client_id=client_id, changed=changed,
                     new_secret=bool(secret))
    db.session.flush()
    return Registered(client, secret)


def rotate_secret(client_id: str, actor: str) -> Registered:
    """A new secret replaces the old one at once (the app must be updated before its next call)."""
    client = get_client(client_id)
    if client.token_endpoint_auth_method not in SECRET_METHODS:
        raise InvalidRegistration("token_endpoint_auth_method",
                                  _l("This app authenticates with %(method)s and has no secret to rotate.",
                                     method=client.token_endpoint_auth_method))
    secret = new_secret()
    client.set_secret(secret)
    audit.record(audit.CLIENT_SECRET_ROTATED, actor=actor, client_id=client_id)
    db.session.flush()
    return Registered(client, secret)


def delete_client(client_id: str, actor: str) -> dict[str, int]:
    """Remove the app, revoke every token it holds and forget every consent given to it."""
    client = get_client(client_id)
    revoked = db.session.execute(
        sa.update(Token).where(Token.client_id == client_id,
                               sa.or_(Token.access_revoked.is_(False), Token.refresh_revoked.is_(False)))
        .values(access_revoked=True, refresh_revoked=True)).rowcount
    consents = db.session.execute(sa.delete(Consent).where(Consent.client_id == client_id)).rowcount
    db.session.delete(client)
    counts = {"tokens_revoked": revoked, "consents_removed": consents}
    audit.record(audit.CLIENT_DELETED, actor=actor, client_id=client_id, **counts)
    db.session.flush()
    return counts


def _audit_fields(values: dict[str, Any]) -> dict[str, Any]:
    """What an auditor needs to see about a registration (no secret, no key material)."""
    return {"name": values["name"], "redirect_uris": values["redirect_uris"], "grant_types": values["grant_types"],
            "scope": values["scope"], "auth_method": values["token_endpoint_auth_method"],
            "require_real_name": values["require_real_name"], "ministry_compatible": values["ministry_compatible"],
            "subject_format": values["subject_format"]}
