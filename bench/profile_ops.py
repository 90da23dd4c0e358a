"""Where one operation's server CPU goes: the bench's operations run in this process, under cProfile.

``make bench`` says how much CPU an operation costs behind the real server; this says where it goes,
without the server, the sockets or the load generator in the picture. It builds the app as
production does (PostgreSQL database ``bench_profile``, recreated; Redis with its own key prefix;
production argon2 parameters), seeds the bench's client and one account with a remembered consent,
warms up, then runs one operation N times with Flask's test client and prints CPU ms per operation
and the functions that cost most (cumulative).

    .venv/bin/python bench/profile_ops.py client_credentials [-n 500] [--top 40] [--sort tottime]
    .venv/bin/python bench/profile_ops.py code_login          # whole flow through the login pages
    .venv/bin/python bench/profile_ops.py code_sso            # authorize with a session, then token
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import os
import pstats
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import run as bench  # noqa: E402  (bench/run.py: the same client, account and settings)

ISSUER = "http://127.0.0.1:5999"


def build_app(database: str = "bench_profile") -> Any:
    """The app on its own database: two tools run at once must not re-seed each other's client."""
    os.environ.update(
        IDP_CONFIG=str(ROOT / "config" / "production.example.toml"), IDP_ISSUER=ISSUER,
        IDP_DATABASE_URL=bench.recreate_database(database), IDP_REDIS_URL=bench.REDIS_URL,
        IDP_STORE_PREFIX=f"benchprof{os.getpid()}:", IDP_KEYS_DIR=tempfile.mkdtemp(prefix="idp-profile-keys-"),
        IDP_SECRET_KEY=secrets.token_urlsafe(48), IDP_SUBJECT_SECRET=secrets.token_urlsafe(48),
        IDP_LOG_LEVEL="WARNING", **bench.production_identity_keys())
    secret = bench.seed(dict(os.environ), ["benchuser0"])
    from idp import create_app

    app = create_app()
    app.config["BENCH_SECRET"] = secret
    return app


def basic(secret: str) -> dict[str, str]:
    raw = f"{bench.CLIENT_ID}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(challenge: str) -> str:
    return "/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": bench.CLIENT_ID, "redirect_uri": bench.REDIRECT,
        "scope": bench.SCOPE, "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge, "code_challenge_method": "S256"})


def redeem(c: Any, secret: str, location: str, verifier: str) -> None:
    code = parse_qs(urlsplit(location).query)["code"][0]
    r = c.post("/oauth/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": bench.REDIRECT,
                                     "code_verifier": verifier}, headers=basic(secret), base_url=ISSUER)
    assert r.status_code == 200 and "id_token" in r.json, r.data


def sign_in(app: Any, c: Any) -> None:
    """A new browser through the login page (one argon2 verify) to the app's redirect with a code."""
    verifier, challenge = pkce()
    r = c.get(authorize_url(challenge), base_url=ISSUER)
    assert r.status_code in (302, 303), r.status_code
    login = r.headers["Location"]
    page = c.get(login, base_url=ISSUER)
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page.data).group(1).decode()
    r = c.post(login, data={"csrf_token": token, "username": "benchuser0", "password": bench.PASSWORD},
               base_url=ISSUER)
    assert r.status_code in (302, 303), (r.status_code, r.data[:300])
    r = c.get(r.headers["Location"], base_url=ISSUER)
    assert r.status_code in (302, 303) and r.headers["Location"].startswith(bench.REDIRECT), r.headers.get("Location")
    redeem(c, app.config["BENCH_SECRET"], r.headers["Location"], verifier)


def operations(app: Any) -> dict[str, Any]:
    secret = app.config["BENCH_SECRET"]
    sso = app.test_client()
    sign_in(app, sso)

    def client_credentials() -> None:
        r = sso.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(secret), base_url=ISSUER)
        assert r.status_code == 200, r.data

    def code_sso() -> None:
        verifier, challenge = pkce()
        r = sso.get(authorize_url(challenge), base_url=ISSUER)
        assert r.status_code in (302, 303), r.status_code
        redeem(sso, secret, r.headers["Location"], verifier)

    def code_login() -> None:
        sign_in(app, app.test_client())

    def discovery() -> None:
        assert sso.get("/.well-known/openid-configuration", base_url=ISSUER).status_code == 200

    return {"client_credentials": client_credentials, "code_sso": code_sso, "code_login": code_login,
            "discovery": discovery}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("operation", choices=["client_credentials", "code_sso", "code_login", "discovery"])
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--sort", default="cumulative")
    args = parser.parse_args()
    app = build_app()
    op = operations(app)[args.operation]
    for _ in range(max(20, args.n // 5)):
        op()
    t0 = time.process_time()
    for _ in range(args.n):
        op()
    plain = (time.process_time() - t0) * 1000 / args.n
    profiler = cProfile.Profile(time.process_time)  # CPU, not waiting on sockets
    profiler.enable()
    for _ in range(args.n):
        op()
    profiler.disable()
    print(f"{args.operation}: {plain:.2f} ms CPU per operation in-process (test client, no server), n={args.n}")
    pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
    app.extensions["idp.store"].flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
