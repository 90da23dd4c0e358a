"""A county's OpenID provider over real HTTP on loopback, for the relying-party tests (R-L2).

It speaks the protocol (discovery, JWKS, authorization code with PKCE S256, token with client_secret_basic,
userinfo, end session) and can be told to lie in one way at a time (``CountyOP.tamper``): another
issuer, another audience, an expired token, another nonce, a signature by a key it does not publish,
a rotated key. The browser tests use the real thing instead: a second instance of this provider.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Flask, abort, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

CLIENT_ID = "edu-sso"
CLIENT_SECRET = "county-secret-" + "y" * 20


@dataclass
class CountyOP:
    """State of the fake county: its users, codes, keys and what to tamper with next."""

    base: str = ""
    issuer: str = ""
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    user: str = ""  # who "signs in" at the county's authorization endpoint
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: list[RSAKey] = field(default_factory=list)
    tamper: dict[str, Any] = field(default_factory=dict)
    end_session: bool = True
    requests: list[str] = field(default_factory=list)
    id_token_claims: set[str] = field(default_factory=set)  # extra claims put in the ID token itself

    def rotate(self) -> RSAKey:
        """A new signing key, published alongside the old one (the old one still verifies)."""
        key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4), "use": "sig", "alg": "RS256"})
        self.keys.append(key)
        return key

    def id_token(self, user: dict[str, Any], nonce: str | None, aud: str = CLIENT_ID) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "sub": user["sub"], "aud": aud, "iat": now, "exp": now + 300,
                                  "auth_time": now}
        if nonce:
            claims["nonce"] = nonce
        for name in self.id_token_claims:
            if name in user:
                claims[name] = user[name]
        claims.update({k: v for k, v in self.tamper.items() if k in ("iss", "aud", "exp", "nonce", "iat")})
        key = self.keys[-1]
        if self.tamper.get("foreign_key"):  # same kid, another key: the signature cannot verify
            key = RSAKey.generate_key(2048, parameters={"kid": key.kid, "alg": "RS256"})
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def make_app(op: CountyOP) -> Flask:
    app = Flask("county_op")

    @app.before_request
    def _log() -> None:
        op.requests.append(request.path)

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        doc = {"issuer": op.tamper.get("discovery_issuer", op.issuer),
               "authorization_endpoint": f"{op.base}/authorize", "token_endpoint": f"{op.base}/token",
               "jwks_uri": f"{op.base}/jwks", "userinfo_endpoint": f"{op.base}/userinfo",
               "response_types_supported": ["code"], "subject_types_supported": ["public"],
               "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
               "token_endpoint_auth_methods_supported": ["client_secret_basic"]}
        if op.end_session:
            doc["end_session_endpoint"] = f"{op.base}/logout"
        return jsonify(doc)

    @app.get("/jwks")
    def jwks() -> Any:
        return jsonify({"keys": [k.as_dict(private=False) for k in op.keys]})

    @app.get("/authorize")
    def authorize() -> Any:
        args = request.args
        if args.get("client_id") != CLIENT_ID or args.get("response_type") != "code":
            abort(400)
        if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            abort(400)
        code = secrets.token_urlsafe(16)
        op.codes[code] = {"challenge": args["code_challenge"], "nonce": args.get("nonce"),
                          "redirect_uri": args["redirect_uri"], "user": op.user, "scope": args.get("scope", "")}
        return redirect(f"{args['redirect_uri']}?{urlencode({'code': code, 'state': args.get('state', '')})}")

    @app.post("/token")
    def token() -> Any:
        auth = request.authorization
        if auth is None or auth.username != CLIENT_ID or auth.password != CLIENT_SECRET:
            return jsonify(error="invalid_client"), 401
        grant = op.codes.pop(request.form.get("code", ""), None)
        if grant is None or grant["redirect_uri"] != request.form.get("redirect_uri"):
            return jsonify(error="invalid_grant"), 400
        verifier = request.form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if digest != grant["challenge"]:
            return jsonify(error="invalid_grant", error_description="PKCE"), 400
        user = op.users[grant["user"]]
        access = secrets.token_urlsafe(16)
        op.codes["at:" + access] = {"user": grant["user"]}
        return jsonify(access_token=access, token_type="Bearer", expires_in=300,
                       id_token=op.id_token(user, grant["nonce"], aud=op.tamper.get("aud", CLIENT_ID)))

    @app.get("/userinfo")
    def userinfo() -> Any:
        header = request.headers.get("Authorization", "")
        grant = op.codes.get("at:" + header.removeprefix("Bearer "))
        if grant is None:
            abort(401)
        user = dict(op.users[grant["user"]])
        if op.tamper.get("userinfo_sub"):
            user["sub"] = op.tamper["userinfo_sub"]
        return jsonify(user)

    @app.get("/logout")
    def logout() -> Any:
        target = request.args.get("post_logout_redirect_uri")
        if not target:
            return "signed out at the county"
        return redirect(f"{target}?{urlencode({'state': request.args.get('state', '')})}")

    return app


@contextmanager
def serve_county() -> Iterator[CountyOP]:
    """The fake county on 127.0.0.1:<free port>, in a thread; stopped afterwards."""
    op = CountyOP()
    op.rotate()
    server = make_server("127.0.0.1", 0, make_app(op), threaded=True)
    op.base = op.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield op
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def dead_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
