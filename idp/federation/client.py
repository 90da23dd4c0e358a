"""The relying-party side of one county's OpenID provider (OIDC Core 1.0 §3.1, Discovery 1.0, RFC 7636).

``CountyClient`` talks to one county with Authlib's requests client (``OAuth2Session``): discovery
(cached, refetched after ``federation_metadata_ttl``), the authorization request (code flow, PKCE S256,
``state`` and ``nonce``), the token request, ID-token validation (signature against the county's JWKS,
fetched again at once when the token names a key we have not seen: the county rotated its keys; then
``iss``, ``aud``, ``azp``, ``exp``, ``iat``, ``nonce``, ``at_hash`` with Authlib's ``CodeIDToken``),
optional userinfo (§5.3.2: its ``sub`` must be the ID token's) and the end-session URL.

The ``Federation`` registry (one per app, in ``app.extensions["idp.federation"]``) holds one client
per configured county. Caches live in the client (one process): they are only caches. What an
operator must see from any process (reachable or not, last error, when) goes to the store.

Two failures, two exceptions: ``CountyUnavailable`` (the county cannot be reached, times out, answers
an error or a document that is not what the protocol says: the person is told that county is down)
and ``CountyAnswerRefused`` (the county answered, but the answer does not verify: wrong issuer,
audience, nonce, signature, expired). Neither carries a token, a code or a secret in its reason.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from idp.config import is_loopback_url
from idp.federation.config import CountyProvider

log = logging.getLogger(__name__)

# Signature algorithms an ID token may use: asymmetric only ("none" and HS* never).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
# Seconds of clock difference tolerated on exp / iat / nbf.
LEEWAY = 60
# An ID token issued longer ago than this is not accepted (a replayed answer), whatever its exp says.
MAX_AGE = 600
# A token naming an unknown key makes us fetch the JWKS again, but not more often than this (a
# stream of forged tokens must not turn us into a load generator against the county).
JWKS_REFETCH_INTERVAL = 10
STATUS_TTL = 30 * 24 * 3600


class CountyUnavailable(Exception):
    """The county's provider cannot be used now; ``reason`` is short and safe to log and show operators."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CountyAnswerRefused(Exception):
    """The county answered something that does not verify; ``reason`` names the check that failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Authorization:
    """An authorization request about to be sent: the URL for the browser and what the callback needs."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class Answer:
    """What a verified sign-in at the county says: its subject, the claims and the raw ID token (kept
    only for the logout hint)."""

    subject: str
    claims: dict[str, Any]
    id_token: str


def _error(prefix: str, exc: BaseException) -> str:
    """A reason for a failed HTTP exchange: the kind of failure, never a URL's query or a body."""
    if isinstance(exc, requests.Timeout):
        return f"{prefix}: timed out"
    if isinstance(exc, requests.ConnectionError):
        return f"{prefix}: cannot connect"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"{prefix}: HTTP {exc.response.status_code}"
    if isinstance(exc, OAuthError):
        return f"{prefix}: {str(exc.error)[:40]}"
    return f"{prefix}: {type(exc).__name__}"


class CountyClient:
    """One county's provider, seen from here (a relying party)."""

    def __init__(self, provider: CountyProvider, *, our_issuer: str, timeout: float, metadata_ttl: int,
                 production: bool = False) -> None:
        self.provider = provider
        self.our_issuer = our_issuer
        self.timeout = timeout
        self.metadata_ttl = metadata_ttl
        self.production = production
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: KeySet | None = None
        self._jwks_at = 0.0
        self._jwks_forced_at = -JWKS_REFETCH_INTERVAL

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def redirect_uri(self) -> str:
        return self.provider.redirect_uri(self.our_issuer)

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.provider.post_logout_redirect_uri(self.our_issuer)

    def _session(self, **kwargs: Any) -> OAuth2Session:
        return OAuth2Session(client_id=self.provider.client_id, client_secret=self.provider.client_secret,
                             default_timeout=self.timeout, **kwargs)

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            with self._session() as http:
                resp = http.get(url, withhold_token=True, headers={"Accept": "application/json"})
                resp.raise_for_status()
                data = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise CountyUnavailable(_error(what, exc) if not isinstance(exc, ValueError)
                                    else f"{what}: not JSON") from None
        if not isinstance(data, dict):
            raise CountyUnavailable(f"{what}: not a JSON object")
        return data

    def _endpoint_ok(self, url: Any) -> bool:
        if not isinstance(url, str):
            return False
        if url.startswith("https://"):
            return True
        return url.startswith("http://") and is_loopback_url(url) and not self.production

    # -- discovery (OpenID Connect Discovery 1.0 §4) ---------------------------------------------
    def metadata(self, *, refresh: bool = False) -> dict[str, Any]:
        """The county's discovery document, fetched again when older than ``metadata_ttl``.

        §4.3: its ``issuer`` must be exactly the configured one (else another provider could speak
        for the county); the endpoints the code flow needs must be there, on https."""
        with self._lock:
            fresh = self._metadata is not None and time.monotonic() - self._metadata_at < self.metadata_ttl
            if fresh and not refresh:
                return self._metadata  # type: ignore[return-value]
        doc = self._get_json(self.provider.discovery_url, "discovery")
        if doc.get("issuer") != self.provider.issuer:
            raise CountyUnavailable("discovery: the document's issuer is not the configured issuer")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not self._endpoint_ok(doc.get(key)):
                raise CountyUnavailable(f"discovery: {key} missing or not https")
        for key in ("userinfo_endpoint", "end_session_endpoint"):
            if key in doc and not self._endpoint_ok(doc[key]):
                raise CountyUnavailable(f"discovery: {key} is not https")
        if "code" not in doc.get("response_types_supported", ["code"]):
            raise CountyUnavailable("discovery: the authorization code flow is not supported")
        with self._lock:
            self._metadata, self._metadata_at = doc, time.monotonic()
        return doc

    def keys(self, *, refresh: bool = False) -> KeySet:
        """The county's signing keys (JWKS), cached like the discovery document."""
        with self._lock:
            fresh = self._jwks is not None and time.monotonic() - self._jwks_at < self.metadata_ttl
            if fresh and not refresh:
                return self._jwks  # type: ignore[return-value]
            if refresh:
                if self._jwks is not None and time.monotonic() - self._jwks_forced_at < JWKS_REFETCH_INTERVAL:
                    return self._jwks
                self._jwks_forced_at = time.monotonic()
        data = self._get_json(self.metadata()["jwks_uri"], "jwks")
        try:
            keyset = KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise CountyUnavailable("jwks: not a key set") from None
        with self._lock:
            self._jwks, self._jwks_at = keyset, time.monotonic()
        return keyset

    def check(self) -> dict[str, Any]:
        """Fetch discovery and keys now (the console's "check now"); raises ``CountyUnavailable``."""
        doc = self.metadata(refresh=True)
        self.keys(refresh=True)
        return doc

    # -- the authorization request (Core §3.1.2.1, RFC 7636) -----------------------------------
    def authorization(self, *, state: str, nonce: str, code_verifier: str, ui_locales: str | None = None
                      ) -> Authorization:
        doc = self.metadata()
        extra: dict[str, str] = {"nonce": nonce}
        if ui_locales:
            extra["ui_locales"] = ui_locales
        with self._session(scope=self.provider.scopes, redirect_uri=self.redirect_uri,
                           code_challenge_method="S256") as client:
            url, _state = client.create_authorization_url(doc["authorization_endpoint"], state=state,
                                                          code_verifier=code_verifier, **extra)
        return Authorization(url=url, state=state, nonce=nonce, code_verifier=code_verifier)

    # -- the token request and the ID token (Core §3.1.3) --------------------------------------
    def _auth_method(self, doc: dict[str, Any]) -> str:
        supported = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        return "client_secret_basic" if "client_secret_basic" in supported else "client_secret_post"

    def redeem(self, code: str, code_verifier: str, nonce: str) -> Answer:
        """Exchange the code (with the PKCE verifier) and verify the ID token; userinfo when the match
        claim is not in the ID token and the county has a userinfo endpoint."""
        doc = self.metadata()
        try:
            with self._session(token_endpoint_auth_method=self._auth_method(doc),
                               redirect_uri=self.redirect_uri) as client:
                token = client.fetch_token(doc["token_endpoint"], grant_type="authorization_code", code=code,
                                           code_verifier=code_verifier, redirect_uri=self.redirect_uri)
        except OAuthError as exc:
            # The county refused the code (invalid_grant: used, expired, PKCE mismatch): a refusal.
            raise CountyAnswerRefused(_error("token", exc)) from None
        except (requests.RequestException, ValueError) as exc:
            raise CountyUnavailable(_error("token", exc) if not isinstance(exc, ValueError)
                                    else "token: not JSON") from None
        raw = token.get("id_token")
        if not isinstance(raw, str) or not raw:
            raise CountyAnswerRefused("token: no id_token")
        claims = self.verify_id_token(raw, nonce, access_token=token.get("access_token"))
        if self.provider.match_claim not in claims and doc.get("userinfo_endpoint") and token.get("access_token"):
            claims = {**self.userinfo(token, claims["sub"]), **claims}
        return Answer(subject=str(claims["sub"]), claims=claims, id_token=raw)

    def verify_id_token(self, raw: str, nonce: str, *, access_token: str | None = None) -> dict[str, Any]:
        """The ID token's claims once it verifies, else ``CountyAnswerRefused`` saying which check failed."""
        doc = self.metadata()
        allowed = [a for a in doc.get("id_token_signing_alg_values_supported", ["RS256"]) if a in ALGORITHMS]
        try:
            header = jws.extract_compact(raw.encode()).protected
        except (JoseError, ValueError):
            raise CountyAnswerRefused("id_token: malformed") from None
        if header.get("alg") not in (allowed or ["RS256"]):
            raise CountyAnswerRefused("id_token: signature algorithm not allowed")
        try:
            token = self._decode(raw, allowed, refresh=False)
        except (InvalidKeyIdError, BadSignatureError):
            # A key we do not know yet (the county rotated) or a signature that fails: fetch the keys
            # again, once, and decide with those.
            try:
                token = self._decode(raw, allowed, refresh=True)
            except (InvalidKeyIdError, BadSignatureError):
                raise CountyAnswerRefused("id_token: bad signature") from None
            except JoseError:
                raise CountyAnswerRefused("id_token: malformed") from None
        except JoseError:
            raise CountyAnswerRefused("id_token: malformed") from None
        options = {"iss": {"essential": True, "value": self.provider.issuer},
                   "aud": {"essential": True, "value": self.provider.client_id}}
        params: dict[str, Any] = {"nonce": nonce, "client_id": self.provider.client_id}
        if access_token:
            params["access_token"] = access_token
        claims = CodeIDToken(token.claims, token.header, options, params)
        try:
            claims.validate(leeway=LEEWAY)
        except ExpiredTokenError:
            raise CountyAnswerRefused("id_token: expired") from None
        except (MissingClaimError, InvalidClaimError) as exc:
            claim = str(exc.claim).split(",")[0][:20]
            raise CountyAnswerRefused(f"id_token: {_CLAIM_REASONS.get(claim, 'invalid ' + claim)}") from None
        except JoseError:
            raise CountyAnswerRefused("id_token: invalid") from None
        if int(claims["iat"]) < time.time() - MAX_AGE - LEEWAY:
            raise CountyAnswerRefused("id_token: issued too long ago")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise CountyAnswerRefused("id_token: no subject")
        return dict(claims)

    def _decode(self, raw: str, allowed: list[str], *, refresh: bool) -> Any:
        keyset = self.keys(refresh=refresh)
        return jwt.decode(raw, keyset, algorithms=allowed or ["RS256"])

    def userinfo(self, token: dict[str, Any], subject: str) -> dict[str, Any]:
        """Userinfo (Core §5.3): only a JSON answer about the same ``sub`` is used (§5.3.2)."""
        doc = self.metadata()
        try:
            with self._session(token=token) as http:
                resp = http.get(doc["userinfo_endpoint"], headers={"Accept": "application/json"})
                resp.raise_for_status()
                data = resp.json()
        except (requests.RequestException, ValueError, OAuthError) as exc:
            raise CountyUnavailable(_error("userinfo", exc) if not isinstance(exc, ValueError)
                                    else "userinfo: not JSON") from None
        if not isinstance(data, dict) or data.get("sub") != subject:
            raise CountyAnswerRefused("userinfo: about another subject")
        return data

    # -- RP-initiated logout (OIDC RP-Initiated Logout 1.0 §2) -----------------------------------
    def end_session_url(self, *, id_token_hint: str | None, state: str) -> str | None:
        """The URL that ends the person's session at the county, or None when it has no end-session
        endpoint (or cannot be reached now)."""
        try:
            doc = self.metadata()
        except CountyUnavailable:
            return None
        endpoint = doc.get("end_session_endpoint")
        if not endpoint:
            return None
        from authlib.common.urls import add_params_to_uri

        params = [("client_id", self.provider.client_id), ("post_logout_redirect_uri", self.post_logout_redirect_uri),
                  ("state", state)]
        if id_token_hint:
            params.insert(0, ("id_token_hint", id_token_hint))
        return add_params_to_uri(endpoint, params)

    def end_session_endpoint(self) -> str | None:
        """The county's end-session endpoint when discovery is at hand (no network call if cached)."""
        try:
            return self.metadata().get("end_session_endpoint")
        except CountyUnavailable:
            return None


_CLAIM_REASONS = {"iss": "from another issuer", "aud": "for another audience", "nonce": "nonce does not match",
                  "azp": "for another party", "at_hash": "access-token hash does not match",
                  "exp": "expired", "iat": "invalid issue time", "nbf": "not yet valid", "sub": "no subject"}


class Federation:
    """The configured counties of one app, in file order."""

    def __init__(self, providers: list[CountyProvider], *, our_issuer: str, timeout: float, metadata_ttl: int,
                 production: bool = False) -> None:
        self.clients = {p.name: CountyClient(p, our_issuer=our_issuer, timeout=timeout, metadata_ttl=metadata_ttl,
                                             production=production) for p in providers}

    def get(self, name: str) -> CountyClient | None:
        return self.clients.get(name)

    def __iter__(self) -> Any:
        return iter(self.clients.values())

    def __len__(self) -> int:
        return len(self.clients)
