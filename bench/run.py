"""Benchmark (issue 2 item 15): requests/s and server CPU per operation under gunicorn.

Starts the provider with gunicorn (2 sync workers by default) on PostgreSQL (its own database ``bench``,
recreated) and Redis (its own key prefix), configured as production (argon2 defaults, real
secrets from the environment, issuer on loopback), seeds one confidential client and one
account with a remembered consent, then measures, one after the other:

- ``GET /.well-known/openid-configuration``
- ``GET /oauth/jwks``
- ``POST /oauth/token`` with ``grant_type=client_credentials`` (client_secret_basic)
- the authorization-code round trip with an existing SSO session: ``GET /oauth/authorize``
  (PKCE S256, nonce) → 302 with the code → ``POST /oauth/token`` → access, refresh and an RS256 ID token

For each: operations per second seen by the load generator (a few client threads on the same
2 cores, so this is a floor) and the server's CPU milliseconds per operation: utime+stime of
the gunicorn master and its workers from ``/proc`` before and after, divided by the number of
operations. Loops are bounded in count and time, traffic stays on 127.0.0.1, and everything the
run started is stopped at the end. Prints a markdown table with the targets.

    make bench                       # or: .venv/bin/python bench/run.py [--scale 0.2]
    .venv/bin/python bench/run.py --worker-class gthread      # keep-alive connections
    .venv/bin/python bench/run.py --profile /tmp/prof         # py-spy stacks per operation (pip install py-spy)
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TICK = os.sysconf("SC_CLK_TCK")

CLIENT_ID = "bench-rp"
REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "Bench-Password-2026"


@dataclass
class Result:
    name: str
    ops: int
    seconds: float
    cpu_ms: float
    target_ms: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_op(self) -> float:
        return self.cpu_ms / self.ops if self.ops else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recreate_database(name: str) -> str:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def production_identity_keys() -> dict[str, str]:
    """Fresh keys for the national-ID protection settings production insists on (never reused)."""
    b64 = lambda: base64.b64encode(secrets.token_bytes(32)).decode()  # noqa: E731
    return {"IDP_IDENTITY_INDEX_KEY": b64(), "IDP_IDENTITY_ENCRYPTION_KEYS": f"bench:{b64()}",
            "IDP_IDENTITY_CURRENT_KEY_ID": "bench"}


def seed(env: dict[str, str]) -> str:
    """Migrate, then create the bench account, client (secret returned) and remembered consent."""
    code = f"""
import os, sys
from idp import create_app
from idp.extensions import db
import flask_migrate
app = create_app()
with app.app_context():
    flask_migrate.upgrade()
    from idp.accounts.services import create_account
    from idp.oidc.models import Client, Consent
    account = create_account("benchuser", {PASSWORD!r}, name="測試學生", email="bench@example.edu.tw",
                             email_verified=True, kind="cloud", actor="bench")
    client = Client(client_id={CLIENT_ID!r}, name="Bench RP", redirect_uris=[{REDIRECT!r}],
                    post_logout_redirect_uris=[], grant_types=["authorization_code", "refresh_token",
                    "client_credentials"], response_types=["code"], scope="openid profile email",
                    token_endpoint_auth_method="client_secret_basic", id_token_signed_response_alg="RS256",
                    subject_type="pairwise", require_real_name=False, skip_consent=False)
    client.set_secret(os.environ["BENCH_CLIENT_SECRET"])
    db.session.add(client)
    db.session.flush()
    db.session.add(Consent(account_id=account.id, client_id=client.client_id, scope="openid profile email"))
    db.session.commit()
"""
    secret = secrets.token_urlsafe(32)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(env, BENCH_CLIENT_SECRET=secret), check=True,
                   timeout=300)
    return secret


def proc_cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                continue
    return out


def server_cpu_ms(master: int) -> float:
    """CPU time of the gunicorn master and its workers (workers live for the whole run)."""
    total = 0
    for pid in [master, *children(master)]:
        try:
            total += proc_cpu_ticks(pid)
        except OSError:
            continue
    return total * 1000.0 / TICK


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def run_load(name: str, op: Any, count: int, threads: int, max_seconds: float, master: int,
             target_ms: float, browser: bool = False, profile: Path | None = None) -> Result:
    """Run ``op(session)`` ``count`` times on ``threads`` threads (bounded by ``max_seconds``)."""
    remaining = [count]
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    done = [0]

    def worker(session: requests.Session) -> None:
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            op(session)
            with lock:
                done[0] += 1

    sessions = [make_session(browser) for _ in range(threads)]
    spy = None
    if profile is not None:  # py-spy samples the workers without pausing them (collapsed stacks)
        out = profile / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".txt")
        spy = subprocess.Popen([str(BIN / "py-spy"), "record", "--pid", str(master), "--subprocesses",
                                "--nonblocking", "-r", "250", "-f", "raw", "-o", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    cpu0, t0 = server_cpu_ms(master), time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(worker, s) for s in sessions]:
            f.result()
    seconds, cpu = time.perf_counter() - t0, server_cpu_ms(master) - cpu0
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    return Result(name, done[0], seconds, cpu, target_ms)


_login_cookies: dict[str, str] = {}


def make_session(browser: bool) -> requests.Session:
    """A client connection; a browser one carries the signed-in person's SSO cookie, an RP's none."""
    s = requests.Session()
    s.trust_env = False
    if browser:
        s.cookies.update(_login_cookies)
    return s


def login(base: str) -> dict[str, str]:
    """Sign the bench account in once through the login form; return the browser's cookies."""
    s = requests.Session()
    s.trust_env = False
    page = s.get(base + "/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = s.post(base + "/login", data={"csrf_token": csrf, "username": "benchuser", "password": PASSWORD,
                                         "next": "/"}, allow_redirects=False, timeout=30)
    assert resp.status_code == 302, (resp.status_code, resp.text[:300])
    return s.cookies.get_dict()


def measure_floor(args: argparse.Namespace) -> Result:
    """The same gunicorn and load on an empty WSGI app (bench/floor_app.py): the server's floor."""
    port = free_port()
    server = subprocess.Popen([str(BIN / "gunicorn"), "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
                               "-k", args.worker_class, "--no-control-socket", "floor_app:app"],
                              cwd=ROOT / "bench", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base, timeout=1)
                break
            except requests.RequestException:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gunicorn (floor app) did not start") from None
                time.sleep(0.2)

        def empty(s: requests.Session) -> None:
            assert s.get(base, timeout=10).status_code == 200

        n = max(20, int(3000 * args.scale))
        run_load("warm-up", empty, max(10, n // 10), args.threads, 30, server.pid, 0)
        return run_load("floor: empty WSGI app, same gunicorn", empty, n, args.threads, 60, server.pid, 0)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the operation counts (0.1 = quick)")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync, gthread)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="directory for py-spy collapsed stacks of each measured run (pip install py-spy); "
                             "the figures of a profiled run are inflated by the sampling")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys = tempfile.TemporaryDirectory(prefix="idp-bench-keys-")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(IDP_CONFIG=str(ROOT / "config" / "production.example.toml"),
               IDP_ISSUER=base, IDP_DATABASE_URL=recreate_database("bench"),
               IDP_REDIS_URL=REDIS_URL, IDP_STORE_PREFIX=f"bench{os.getpid()}:", IDP_KEYS_DIR=keys.name,
               IDP_SECRET_KEY=secrets.token_urlsafe(48), IDP_SUBJECT_SECRET=secrets.token_urlsafe(48),
               IDP_LOG_LEVEL="WARNING", **production_identity_keys())
    secret = seed(env)
    log = open(Path(keys.name) / "gunicorn.log", "wb")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen([str(BIN / "gunicorn"), "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
                               "-k", args.worker_class, "--no-control-socket", "wsgi:app"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(base + "/.well-known/openid-configuration", timeout=1)
                break
            except requests.RequestException:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start:\n" + Path(log.name).read_text()[-2000:]) from None
                time.sleep(0.2)
        _login_cookies.update(login(base))
        auth = (CLIENT_ID, secret)
        rp_sessions: dict[int, requests.Session] = {}

        def discovery(s: requests.Session) -> None:
            r = s.get(base + "/.well-known/openid-configuration", timeout=10)
            assert r.status_code == 200

        def jwks(s: requests.Session) -> None:
            r = s.get(base + "/oauth/jwks", timeout=10)
            assert r.status_code == 200

        def client_credentials(s: requests.Session) -> None:
            r = s.post(base + "/oauth/token", data={"grant_type": "client_credentials"}, auth=auth, timeout=10)
            assert r.status_code == 200, r.text

        def code_flow(s: requests.Session) -> None:
            """The browser (``s``, with the SSO cookie) gets the code; the app's back end redeems it."""
            rp = rp_sessions.setdefault(threading.get_ident(), make_session(False))
            verifier, challenge = pkce()
            params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
                      "scope": "openid profile email", "state": secrets.token_urlsafe(8),
                      "nonce": secrets.token_urlsafe(8), "code_challenge": challenge, "code_challenge_method": "S256"}
            r = s.get(f"{base}/oauth/authorize?{urlencode(params)}", allow_redirects=False, timeout=10)
            assert r.status_code == 302, (r.status_code, r.text[:300])
            code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
            t = rp.post(base + "/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                     "redirect_uri": REDIRECT, "code_verifier": verifier},
                       auth=auth, timeout=10)
            assert t.status_code == 200 and "id_token" in t.json(), t.text

        plan = [("discovery", discovery, 3000, 0.5), ("JWKS", jwks, 3000, 0.5),
                ("client_credentials token", client_credentials, 1500, 1.5),
                ("code flow + PKCE (authorize → token, RS256 ID token)", code_flow, 500, 8.0)]
        results = []
        for name, op, count, target in plan:
            n = max(20, int(count * args.scale))
            browser = op is code_flow
            run_load("warm-up", op, max(10, n // 10), args.threads, 30, server.pid, target, browser)
            results.append(run_load(name, op, n, args.threads, 60, server.pid, target, browser, args.profile))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
        log.close()
        keys.cleanup()

    results.append(measure_floor(args))
    print(f"\nidp benchmark: gunicorn {args.workers} {args.worker_class} workers, PostgreSQL + Redis, "
          f"production settings, {os.cpu_count()} CPUs, {args.threads} client threads on the same machine\n")
    print("| operation | ops | requests/s | server CPU ms/op | target ms/op | met |")
    print("| --- | ---: | ---: | ---: | ---: | :---: |")
    for r in results:
        if r.target_ms <= 0:  # the floor: no target of its own
            print(f"| {r.name} | {r.ops} | {r.rate:.0f} | {r.cpu_per_op:.2f} | – | – |")
            continue
        met = "yes" if r.cpu_per_op <= r.target_ms else "**no**"
        print(f"| {r.name} | {r.ops} | {r.rate:.0f} | {r.cpu_per_op:.2f} | ≤ {r.target_ms:g} | {met} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
