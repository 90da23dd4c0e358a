"""Benchmark (issue 2 item 15, issue 9 item 2): requests/s and server CPU per operation, per server.

Starts the provider under each server in turn, with 2 workers by default: Granian as production
runs it (``flask --app wsgi serve``, idp/serving.py) and, for comparison, gunicorn with sync workers
(what served it before issue 9). Each gets PostgreSQL (its own database ``bench``, recreated for
each server) and Redis (its own key prefix), configured as production (argon2 defaults, real
secrets from the environment, issuer on loopback); the run seeds one confidential client and one
account with a remembered consent, then measures, one after the other:

- ``GET /.well-known/openid-configuration``
- ``GET /oauth/jwks``
- ``POST /oauth/token`` with ``grant_type=client_credentials`` (client_secret_basic)
- the authorization-code round trip with an existing SSO session: ``GET /oauth/authorize``
  (PKCE S256, nonce) → 302 with the code → ``POST /oauth/token`` → access, refresh and an RS256 ID token

and each server's floor: an empty app under the same server settings (bench/floor_app.py; under
Granian behind the same ASGI adapter as the provider).

For each: operations per second seen by the load generator (a few client threads on the same
2 cores, so this is a floor) and the server's CPU milliseconds per operation: utime+stime of
the server's main process and all its descendants (gunicorn's workers, Granian's worker
processes) from ``/proc`` before and after, divided by the number of operations. Loops are
bounded in count and time, traffic stays on 127.0.0.1, and everything the run started is stopped
at the end. Prints one markdown table, the servers side by side, with the targets.

    make bench                       # or: .venv/bin/python bench/run.py [--scale 0.2]
    .venv/bin/python bench/run.py --servers granian           # one server only
    .venv/bin/python bench/run.py --worker-class gthread      # gunicorn with keep-alive connections
    .venv/bin/python bench/run.py --profile /tmp/prof         # py-spy stacks per operation (pip install py-spy)
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
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


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found.extend(kids)
        todo.extend(kids)
    return found


def server_cpu_ms(master: int) -> float:
    """CPU time of the server's main process and all its descendants (workers live for the whole run)."""
    total = 0
    for pid in [master, *descendants(master)]:
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


def server_command(server: str, port: int, args: argparse.Namespace, floor: bool = False) -> list[str]:
    """The command line of ``server`` on ``port``: the provider, or the empty floor app (cwd bench/)."""
    if server == "gunicorn":
        return [str(BIN / "gunicorn"), "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "-k", args.worker_class,
                "--no-control-socket", "floor_app:app" if floor else "wsgi:app"]
    if floor:
        return [sys.executable, "floor_app.py", "--port", str(port), "--workers", str(args.workers)]
    return [str(BIN / "flask"), "--app", "wsgi", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(args.workers), "--no-access-log"]


def start(command: list[str], cwd: Path, env: dict[str, str] | None, url: str, log: Any) -> subprocess.Popen:
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(url, timeout=1)
            return proc
        except requests.RequestException:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                text = Path(log.name).read_text()[-2000:] if hasattr(log, "name") else ""
                raise SystemExit(f"{command[0]} did not start:\n{text}") from None
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def measure_floor(server: str, args: argparse.Namespace) -> Result:
    """The same server and load on an empty app (bench/floor_app.py): the server's floor."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    proc = start(server_command(server, port, args, floor=True), ROOT / "bench", None, base, subprocess.DEVNULL)
    try:
        def empty(s: requests.Session) -> None:
            assert s.get(base, timeout=10).status_code == 200

        n = max(20, int(3000 * args.scale))
        run_load("warm-up", empty, max(10, n // 10), args.threads, 30, proc.pid, 0)
        return run_load(FLOOR, empty, n, args.threads, 60, proc.pid, 0)
    finally:
        stop(proc)


FLOOR = "floor: empty app, same server (Granian: behind the same ASGI adapter)"


def measure_provider(server: str, args: argparse.Namespace) -> list[Result]:
    """Fresh database and keys, the provider under ``server``, each operation of the plan in turn."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys = tempfile.TemporaryDirectory(prefix="idp-bench-keys-")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(IDP_CONFIG=str(ROOT / "config" / "production.example.toml"),
               IDP_ISSUER=base, IDP_DATABASE_URL=recreate_database("bench"),
               IDP_REDIS_URL=REDIS_URL, IDP_STORE_PREFIX=f"bench{os.getpid()}{server}:", IDP_KEYS_DIR=keys.name,
               IDP_SECRET_KEY=secrets.token_urlsafe(48), IDP_SUBJECT_SECRET=secrets.token_urlsafe(48),
               IDP_LOG_LEVEL="WARNING", **production_identity_keys())
    secret = seed(env)
    log = open(Path(keys.name) / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = start(server_command(server, port, args), ROOT, env, base + "/.well-known/openid-configuration", log)
    try:
        _login_cookies.clear()
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
        profile = args.profile / server if args.profile else None
        if profile:
            profile.mkdir(parents=True, exist_ok=True)
        for name, op, count, target in plan:
            n = max(20, int(count * args.scale))
            browser = op is code_flow
            run_load("warm-up", op, max(10, n // 10), args.threads, 30, proc.pid, target, browser)
            results.append(run_load(name, op, n, args.threads, 60, proc.pid, target, browser, profile))
        return results
    finally:
        stop(proc)
        log.close()
        keys.cleanup()


SERVER_NAMES = {"gunicorn": "gunicorn (sync)", "granian": "Granian (flask serve)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the operation counts (0.1 = quick)")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of each server")
    parser.add_argument("--servers", default="gunicorn,granian",
                        help="comma-separated servers to measure, in order (gunicorn, granian)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync, gthread)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="directory for py-spy collapsed stacks of each measured run (pip install py-spy); "
                             "the figures of a profiled run are inflated by the sampling")
    args = parser.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - set(SERVER_NAMES)
    if unknown or not servers:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown)) or 'none given'}")

    table: dict[str, list[Result]] = {}
    for server in servers:
        table[server] = [*measure_provider(server, args), measure_floor(server, args)]

    first = table[servers[0]]
    print(f"\nidp benchmark: {args.workers} workers per server (gunicorn {args.worker_class}), PostgreSQL + Redis, "
          f"production settings, {os.cpu_count()} CPUs, {args.threads} client threads on the same machine\n")
    heads = "".join(f" {SERVER_NAMES[s]} ops/s | {SERVER_NAMES[s]} CPU ms/op |" for s in servers)
    print(f"| operation | ops |{heads} target ms/op |")
    print("| --- | ---: |" + " ---: | ---: |" * len(servers) + " ---: |")
    for i, row in enumerate(first):
        cells = ""
        for s in servers:
            r = table[s][i]
            cpu = f"{r.cpu_per_op:.2f}"
            if r.target_ms > 0 and r.cpu_per_op > r.target_ms:
                cpu = f"**{cpu}**"
            cells += f" {r.rate:.0f} | {cpu} |"
        target = f"≤ {row.target_ms:g}" if row.target_ms > 0 else "–"
        ops = " / ".join(sorted({str(table[s][i].ops) for s in servers}, key=int))
        print(f"| {row.name} | {ops} |{cells} {target} |")
    print("\nCPU figures above their target are in bold. ops: operations measured per server.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
