"""Benchmark (issue 2 item 15, issue 9 item 2, issue 11): server CPU per operation, ours beside node-oidc-provider.

Measures, with the same operations, client threads and accounting, this provider and
node-oidc-provider 9 (bench/node/: its in-memory adapter and its own development login and consent
pages), one after the other, and prints one markdown table: server CPU milliseconds per operation,
ours, node's, the ratio and the target.

Ours runs with 2 workers under Granian as production serves it (``flask --app wsgi serve``,
idp/serving.py), and, on request, under gunicorn with sync workers (what served it before issue 9),
on PostgreSQL (its own database ``bench``, recreated for each server) and Redis (its own key
prefix), configured as production (argon2 defaults, real secrets from the environment, issuer on
loopback). The run seeds one confidential client and one account per client thread, each with a
remembered consent. node-oidc-provider runs as one process (its in-memory adapter cannot be shared
between processes) with the same client, started by ``node bench/node/server.js`` on a loopback port.
Operations, one after the other:

- ``GET /.well-known/openid-configuration``
- ``GET`` the JWKS
- ``POST`` the token endpoint with ``grant_type=client_credentials`` (client_secret_basic)
- the authorization-code round trip with an existing SSO session: ``GET`` authorize (PKCE S256,
  nonce) → redirect with the code → ``POST`` token → access, refresh and an RS256 ID token
- the whole code flow through each provider's own login pages, from a new browser each time:
  ``GET`` authorize → login page → ``POST`` the login form (ours: /login with its CSRF token and the
  account's password, one argon2 verify; node's: /interaction/:uid, which checks no password) →
  authorize again (consent remembered) → redirect with the code → ``POST`` token with the PKCE
  verifier → access, refresh and an RS256 ID token. Printed raw and, for ours, minus the CPU of one
  argon2 verify with the production parameters, measured in this process before anything starts.

and each server's floor: an empty app under the same server (bench/floor_app.py; under Granian
behind the same ASGI adapter as the provider; for node, an empty ``node:http`` server).

Server CPU is utime+stime of the server's main process and all its descendants (Granian's or
gunicorn's workers) from ``/proc`` before and after, divided by the operations. Loops are bounded in
count and time, traffic stays on 127.0.0.1, and everything the run started is stopped at the end.

    make bench                       # or: .venv/bin/python bench/run.py [--scale 0.1]
    .venv/bin/python bench/run.py --servers granian,gunicorn  # ours under both servers
    .venv/bin/python bench/run.py --no-node                   # ours only
    .venv/bin/python bench/run.py --worker-class gthread      # gunicorn with keep-alive connections
    .venv/bin/python bench/run.py --profile /tmp/prof         # py-spy stacks per operation (pip install py-spy)
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import hashlib
import html.parser
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "bench" / "node"
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TICK = os.sysconf("SC_CLK_TCK")

CLIENT_ID = "bench-rp"
REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "Bench-Password-2026"
SCOPE = "openid profile email"

# Row keys, in the order of the table.
DISCOVERY, JWKS, CLIENT_CREDENTIALS, CODE_SSO, CODE_LOGIN, FLOOR = (
    "discovery", "jwks", "client_credentials", "code_sso", "code_login", "floor")


@dataclass
class Result:
    name: str
    ops: int
    seconds: float
    cpu_ms: float
    hashes: list[float] | None = None  # CPU ms of each argon2 verify the server made in the run (the probe)

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


def accounts(threads: int) -> list[str]:
    """One account per client thread: concurrent sign-ins of one account would meet its login
    throttle (attempts are reserved before the hash), which a classroom of different pupils does not."""
    return [f"benchuser{i}" for i in range(threads)]


def seed(env: dict[str, str], names: list[str]) -> str:
    """Migrate, then create the bench accounts, the client (secret returned) and remembered consents."""
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
    client = Client(client_id={CLIENT_ID!r}, name="Bench RP", redirect_uris=[{REDIRECT!r}],
                    post_logout_redirect_uris=[], grant_types=["authorization_code", "refresh_token",
                    "client_credentials"], response_types=["code"], scope={SCOPE!r},
                    token_endpoint_auth_method="client_secret_basic", id_token_signed_response_alg="RS256",
                    subject_type="pairwise", require_real_name=False, skip_consent=False)
    client.set_secret(os.environ["BENCH_CLIENT_SECRET"])
    db.session.add(client)
    db.session.flush()
    for name in {names!r}:
        account = create_account(name, {PASSWORD!r}, name="測試學生", email=name + "@example.edu.tw",
                                 email_verified=True, kind="cloud", actor="bench")
        db.session.add(Consent(account_id=account.id, client_id=client.client_id, scope={SCOPE!r}))
    db.session.commit()
"""
    secret = secrets.token_urlsafe(32)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(env, BENCH_CLIENT_SECRET=secret), check=True,
                   timeout=300)
    return secret


def argon2_parameters() -> dict[str, int]:
    """The production argon2 parameters: config/default.toml, as production.example.toml keeps them."""
    values: dict[str, Any] = {}
    for name in ("default.toml", "production.example.toml"):
        path = ROOT / "config" / name
        if path.exists():
            values.update(tomllib.loads(path.read_text()))
    return {"memory_cost": int(values["argon2_memory_cost"]), "time_cost": int(values["argon2_time_cost"]),
            "parallelism": int(values["argon2_parallelism"])}


def argon2_verify_ms(runs: int) -> tuple[float, dict[str, int]]:
    """CPU milliseconds of one successful ``PasswordHasher.verify`` (the one hash our login form
    costs), timed with ``process_time`` in this process while nothing else runs in it."""
    from argon2 import PasswordHasher

    params = argon2_parameters()
    hasher = PasswordHasher(**params)
    stored = hasher.hash(PASSWORD)
    hasher.verify(stored, PASSWORD)  # warm
    t0 = time.process_time()
    for _ in range(runs):
        hasher.verify(stored, PASSWORD)
    return (time.process_time() - t0) * 1000.0 / runs, params


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


class Browser(requests.Session):
    """One client thread: a browser signing in as ``account``, and ``rp``, the app's back end
    (its own connection) redeeming codes."""

    def __init__(self, account: str) -> None:
        super().__init__()
        self.trust_env = False
        self.account = account
        self.rp = requests.Session()
        self.rp.trust_env = False

    def close(self) -> None:
        self.rp.close()
        super().close()


def hash_log_offsets(directory: Path | None) -> dict[Path, int]:
    """Where each server process's hash log ends now (``bench/hash_probe``)."""
    return {} if directory is None else {f: f.stat().st_size for f in directory.glob("*.log")}


def hashes_since(directory: Path, offsets: dict[Path, int]) -> list[float]:
    """The CPU ms of every verify the server's processes logged after ``offsets``."""
    spent: list[float] = []
    for f in directory.glob("*.log"):
        with open(f, "rb") as fh:
            fh.seek(offsets.get(f, 0))
            spent += [float(line) for line in fh.read().split()]
    return spent


def run_load(name: str, op: Callable[[Browser], None], count: int, names: list[str], max_seconds: float,
             master: int, sso: requests.cookies.RequestsCookieJar | None = None,
             profile: Path | None = None, hash_log: Path | None = None) -> Result:
    """Run ``op(browser)`` ``count`` times on one thread per account (bounded by ``max_seconds``);
    with ``sso``, each browser starts with those cookies (a signed-in person); with ``hash_log``,
    also collect the server's argon2 verifies of the run (``bench/hash_probe``)."""
    remaining = [count]
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    done = [0]

    def worker(browser: Browser) -> None:
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            op(browser)
            with lock:
                done[0] += 1

    browsers = [Browser(account) for account in names]
    if sso is not None:
        for b in browsers:
            b.cookies.update(sso)
    spy = None
    if profile is not None:  # py-spy samples the workers without pausing them (collapsed stacks)
        out = profile / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".txt")
        spy = subprocess.Popen([str(BIN / "py-spy"), "record", "--pid", str(master), "--subprocesses",
                                "--nonblocking", "-r", "250", "-f", "raw", "-o", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    try:
        offsets = hash_log_offsets(hash_log)
        cpu0, t0 = server_cpu_ms(master), time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(len(browsers)) as pool:
            for f in [pool.submit(worker, b) for b in browsers]:
                f.result()
        seconds, cpu = time.perf_counter() - t0, server_cpu_ms(master) - cpu0
        hashes = hashes_since(hash_log, offsets) if hash_log is not None else None
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        for b in browsers:
            b.close()
    return Result(name, done[0], seconds, cpu, hashes)


class PostForm(html.parser.HTMLParser):
    """The first ``method="post"`` form of a page: its action and hidden fields (a CSRF token, ``next``)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self._in = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done and a.get("method", "").lower() == "post":
            self._in, self.action = True, a.get("action", "")
        elif tag == "input" and self._in and a.get("type") == "hidden" and a.get("name"):
            self.hidden[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in:
            self._in, self._done = False, True


def post_form(s: requests.Session, page_url: str, fields: dict[str, str], page: Any = None) -> str:
    """GET a page (unless ``page`` is its answer already), POST its form (hidden fields + ``fields``)
    as a browser would, return the redirect."""
    page = page if page is not None else s.get(page_url, timeout=10)
    assert page.status_code == 200, (page_url, page.status_code, page.text[:300])
    form = PostForm()
    form.feed(page.text)
    assert form.action is not None, (page_url, page.text[:300])
    target = urljoin(page_url, form.action or page_url)
    r = s.post(target, data={**form.hidden, **fields}, allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303), (target, r.status_code, r.text[:300])
    return urljoin(target, r.headers["Location"])


class Provider:
    """What the load generator needs of a provider: its endpoints and how its login pages work."""

    name = ""

    def __init__(self, base: str, secret: str, proc: subprocess.Popen, hash_log: Path | None = None) -> None:
        self.base, self.auth, self.proc, self.hash_log = base, (CLIENT_ID, secret), proc, hash_log
        meta = requests.get(base + "/.well-known/openid-configuration", timeout=10).json()
        self.authorize_url: str = meta["authorization_endpoint"]
        self.token_url: str = meta["token_endpoint"]
        self.jwks_url: str = meta["jwks_uri"]

    def sign_in(self, browser: Browser, login_url: str, page: Any = None) -> str:
        """From the login page the authorize request redirected to (or answered with: ``page``),
        back to where it continues."""
        raise NotImplementedError

    def consent(self, browser: Browser, url: str) -> str | None:
        """Approve the consent page at ``url`` (returns where it continues); None if ``url`` is none."""
        return None

    # The operations -------------------------------------------------------------------------------

    def discovery(self, s: Browser) -> None:
        r = s.get(self.base + "/.well-known/openid-configuration", timeout=10)
        assert r.status_code == 200

    def jwks(self, s: Browser) -> None:
        r = s.get(self.jwks_url, timeout=10)
        assert r.status_code == 200

    def client_credentials(self, s: Browser) -> None:
        r = s.rp.post(self.token_url, data={"grant_type": "client_credentials"}, auth=self.auth, timeout=10)
        assert r.status_code == 200 and "access_token" in r.json(), r.text

    def code_sso(self, s: Browser) -> None:
        """The browser (signed in already) gets the code; the app's back end redeems it."""
        verifier, challenge = pkce()
        r = s.get(self.authorize(challenge), allow_redirects=False, timeout=10)
        assert r.status_code in (302, 303), (r.status_code, r.text[:300])
        self.redeem(s, urljoin(r.url, r.headers["Location"]), verifier)

    def code_login(self, s: Browser, *, approve: bool = False) -> dict[str, Any]:
        """A new browser: authorize → (node: its login page) → POST the form → (node: authorize again) → code → token.
        ``approve``: answer a consent page (once per account, before measuring); else one is an error."""
        s.cookies.clear()
        verifier, challenge = pkce()
        r = s.get(self.authorize(challenge), allow_redirects=False, timeout=10)
        if r.status_code == 200:  # ours: the authorization request answers with the login page itself
            location = self.sign_in(s, r.url, r)
        else:  # node: a redirect to its login page
            assert r.status_code in (302, 303), (r.status_code, r.text[:300])
            location = self.sign_in(s, urljoin(r.url, r.headers["Location"]))
        if not location.startswith(REDIRECT):  # node: back to the authorization; ours: only to ask consent
            r = s.get(location, allow_redirects=False, timeout=10)
            assert r.status_code in (302, 303), (location, r.status_code, r.text[:300])
            location = urljoin(r.url, r.headers["Location"])
        if not location.startswith(REDIRECT):
            assert approve, f"{self.name}: consent asked again for {s.account}: {location}"
            back = self.consent(s, location)
            assert back is not None, location
            r = s.get(back, allow_redirects=False, timeout=10)
            assert r.status_code in (302, 303), (back, r.status_code, r.text[:300])
            location = urljoin(r.url, r.headers["Location"])
        return self.redeem(s, location, verifier)

    def authorize(self, challenge: str) -> str:
        params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": SCOPE,
                  "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        return f"{self.authorize_url}?{urlencode(params)}"

    def redeem(self, s: Browser, location: str, verifier: str) -> dict[str, Any]:
        assert location.startswith(REDIRECT), location
        code = parse_qs(urlsplit(location).query)["code"][0]
        t = s.rp.post(self.token_url, data={"grant_type": "authorization_code", "code": code,
                                            "redirect_uri": REDIRECT, "code_verifier": verifier},
                      auth=self.auth, timeout=10)
        body = t.json()
        assert t.status_code == 200 and {"access_token", "id_token", "refresh_token"} <= body.keys(), t.text
        return body

    def sso_cookies(self, account: str) -> requests.cookies.RequestsCookieJar:
        """Sign ``account`` in once through the login pages; the browser's cookies (an SSO session)."""
        b = Browser(account)
        try:
            tokens = self.code_login(b, approve=True)
            header = tokens["id_token"].split(".")[0]
            alg = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"]
            assert alg == "RS256", f"{self.name}: ID token signed with {alg}, not RS256"
            return b.cookies.copy()
        finally:
            b.close()


class Ours(Provider):
    name = "ours"

    def sign_in(self, browser: Browser, login_url: str, page: Any = None) -> str:
        assert page is not None or urlsplit(login_url).path == "/login", login_url
        return post_form(browser, login_url, {"username": browser.account, "password": PASSWORD}, page)


class Node(Provider):
    name = "node-oidc-provider"

    def sign_in(self, browser: Browser, login_url: str, page: Any = None) -> str:
        assert "/interaction/" in login_url, login_url
        return post_form(browser, login_url, {"login": browser.account, "password": PASSWORD}, page)

    def consent(self, browser: Browser, url: str) -> str | None:
        if "/interaction/" not in url:
            return None
        return post_form(browser, url, {})


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


def measure_floor(command: Callable[[int], list[str]], cwd: Path, env: dict[str, str] | None,
                  args: argparse.Namespace, names: list[str]) -> Result:
    """The same server and load on an empty app (``command(port)``): the server's floor."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    proc = start(command(port), cwd, env and dict(env, BENCH_PORT=str(port)), base, subprocess.DEVNULL)
    try:
        def empty(s: Browser) -> None:
            assert s.get(base, timeout=10).status_code == 200

        n = max(20, int(3000 * args.scale))
        run_load("warm-up", empty, 1000, names, 60, proc.pid)
        return run_load(FLOOR, empty, n, names, 60, proc.pid)
    finally:
        stop(proc)


# (operation, count at --scale 1, warm-up count). The warm-ups do not scale: node's JIT needs about a
# thousand light requests before its figures settle (its discovery CPU halves over the first 1,500).
PLAN = [(DISCOVERY, 3000, 1000), (JWKS, 3000, 1000), (CLIENT_CREDENTIALS, 1500, 500), (CODE_SSO, 500, 100),
        (CODE_LOGIN, 300, 50)]


def measure(provider: Provider, args: argparse.Namespace, names: list[str], label: str) -> dict[str, Result]:
    """Each operation of the plan in turn against a started provider."""
    results: dict[str, Result] = {}
    profile = args.profile / label if args.profile else None
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
    # Sign each account in once through the login pages (node: approving its consent page once,
    # which it then remembers); the first account's session is the signed-in browser of CODE_SSO.
    sso = None
    for account in names:
        cookies = provider.sso_cookies(account)
        sso = sso or cookies
    pid = provider.proc.pid
    for key, count, warm in PLAN:
        n = max(20, int(count * args.scale))
        op = getattr(provider, key)
        jar = sso if key == CODE_SSO else None
        run_load("warm-up", op, warm, names, 60, pid, jar)
        results[key] = run_load(key, op, n, names, 60, pid, jar, profile,
                                provider.hash_log if key == CODE_LOGIN else None)
    return results


def measure_ours(server: str, args: argparse.Namespace, names: list[str]) -> dict[str, Result]:
    """Fresh database and keys, the provider under ``server``, the plan, then the server's floor."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys = tempfile.TemporaryDirectory(prefix="idp-bench-keys-")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(IDP_CONFIG=str(ROOT / "config" / "production.example.toml"),
               IDP_ISSUER=base, IDP_DATABASE_URL=recreate_database(os.environ.get("BENCH_DATABASE", "bench")),
               IDP_REDIS_URL=REDIS_URL, IDP_STORE_PREFIX=f"bench{os.getpid()}{server}:", IDP_KEYS_DIR=keys.name,
               IDP_SECRET_KEY=secrets.token_urlsafe(48), IDP_SUBJECT_SECRET=secrets.token_urlsafe(48),
               IDP_LOG_LEVEL="WARNING", **production_identity_keys())
    secret = seed(env, names)
    # The hash probe (bench/hash_probe): the server's own argon2 verifies, timed where they run.
    hash_log = Path(keys.name) / "hashes"
    hash_log.mkdir()
    env.update(BENCH_HASH_LOG=str(hash_log),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "bench" / "hash_probe"), env.get("PYTHONPATH")])))
    log = open(Path(keys.name) / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = start(server_command(server, port, args), ROOT, env, base + "/.well-known/openid-configuration", log)
    try:
        results = measure(Ours(base, secret, proc, hash_log), args, names, server)
    finally:
        stop(proc)
        log.close()
        keys.cleanup()
    results[FLOOR] = measure_floor(lambda p: server_command(server, p, args, floor=True), ROOT / "bench", None,
                                   args, names)
    return results


def node_executable() -> str:
    """``node``, 20 or later, with node-oidc-provider installed in bench/node (``make bench`` does it)."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not installed: `make bench` installs it (or: apt-get install nodejs npm)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    if major < 20:
        raise SystemExit(f"node-oidc-provider 9 needs Node.js 20 or later (22 recommended); found {version}")
    if not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        raise SystemExit("node-oidc-provider is not installed: run `make bench`, or `npm ci` in bench/node")
    return node


def measure_node(args: argparse.Namespace, names: list[str]) -> dict[str, Result]:
    """node-oidc-provider (bench/node/server.js) on a loopback port, the plan, then node's floor."""
    node = node_executable()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    secret = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(BENCH_PORT=str(port), BENCH_CLIENT_ID=CLIENT_ID, BENCH_CLIENT_SECRET=secret,
               BENCH_REDIRECT_URI=REDIRECT, NODE_ENV="production")
    logdir = tempfile.TemporaryDirectory(prefix="idp-bench-node-")
    log = open(Path(logdir.name) / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = start([node, "server.js"], NODE_DIR, env, base + "/.well-known/openid-configuration", log)
    try:
        results = measure(Node(base, secret, proc), args, names, "node")
        log.flush()
        errors = [line for line in Path(log.name).read_text().splitlines() if "server_error" in line]
        assert not errors, errors[:3]
    finally:
        stop(proc)
        log.close()
        logdir.cleanup()
    results[FLOOR] = measure_floor(lambda _: [node, "server.js", "--floor"], NODE_DIR, env, args, names)
    return results


SERVER_NAMES = {"gunicorn": "gunicorn (sync)", "granian": "Granian"}
ROW_NAMES = {
    DISCOVERY: "discovery (`GET /.well-known/openid-configuration`)",
    JWKS: "JWKS",
    CLIENT_CREDENTIALS: "client_credentials token (client_secret_basic)",
    CODE_SSO: "code flow + PKCE with an existing session (authorize → token)",
    CODE_LOGIN: "whole code flow through the login pages, raw (ours: one argon2 verify)",
    "minus_hash": "whole code flow through the login pages, minus one argon2 verify (as the server ran it)",
    "served_hash": "one argon2 verify ({params}), in the server during that run (mean, thread CPU)",
    "hash": "one argon2 verify ({params}), in the bench process before the run",
    FLOOR: "floor: empty app, same server (Granian: behind the same ASGI adapter; node: node:http)",
}
TARGETS = {DISCOVERY: 0.5, JWKS: 0.5, CLIENT_CREDENTIALS: 1.0, "minus_hash": 10.0}


def cell(value: float | None, target: float | None) -> str:
    if value is None:
        return "–"
    text = f"{value:.2f}"
    return f"**{text}**" if target is not None and value > target else text


def served_hash_ms(login: Result, otherwise: float | None) -> float | None:
    """CPU ms of one argon2 verify as the server ran them during the whole-flow run (the probe's
    mean; one verify per flow), or ``otherwise`` when the probe saw none (it could not be loaded)."""
    if not login.hashes:
        return otherwise
    return sum(login.hashes) / len(login.hashes)


def print_table(ours: dict[str, dict[str, Result]], node: dict[str, Result] | None, hash_ms: float,
                params: dict[str, int], args: argparse.Namespace, servers: list[str]) -> None:
    first = servers[0]
    beside = (" beside node-oidc-provider 9 (one process, in-memory adapter, development login pages)"
              if node is not None else "")
    print(f"\nidp benchmark: ours with {args.workers} workers (PostgreSQL + Redis, production settings){beside}; "
          f"{os.cpu_count()} CPUs, {args.threads} client threads on the same machine; server CPU ms per operation\n")
    heads = "".join(f" ours CPU ms/op ({SERVER_NAMES[s]}) |" for s in servers)
    if node is not None:
        ratio_head = "ratio ours/node" if len(servers) == 1 else f"ratio ours ({SERVER_NAMES[first]})/node"
        heads += f" node-oidc-provider CPU ms/op | {ratio_head} |"
    print(f"| operation |{heads} target ms/op |")
    print("| --- |" + " ---: |" * (len(servers) + (2 if node is not None else 0)) + " ---: |")
    m = params["memory_cost"], params["time_cost"], params["parallelism"]
    rows = [DISCOVERY, JWKS, CLIENT_CREDENTIALS, CODE_SSO, CODE_LOGIN, "minus_hash", "served_hash", "hash", FLOOR]
    for key in rows:
        target = TARGETS.get(key)
        ours_cells: list[float | None] = []
        for s in servers:
            r = ours[s]
            if key == "minus_hash":
                ours_cells.append(r[CODE_LOGIN].cpu_per_op - served_hash_ms(r[CODE_LOGIN], hash_ms))
            elif key == "served_hash":
                ours_cells.append(served_hash_ms(r[CODE_LOGIN], None))
            elif key == "hash":
                ours_cells.append(hash_ms)
            else:
                ours_cells.append(r[key].cpu_per_op)
        cells = "".join(f" {cell(v, target)} |" for v in ours_cells)
        if node is not None:
            if key in ("hash", "served_hash"):
                cells += " n/a (no password hashing) | – |"
            else:
                theirs = node[CODE_LOGIN if key == "minus_hash" else key].cpu_per_op
                ratio = f"{ours_cells[0] / theirs:.1f}" if theirs and ours_cells[0] is not None else "–"
                cells += f" {cell(theirs, None)} | {ratio} |"
        name = ROW_NAMES[key].format(params=f"m={m[0]} t={m[1]} p={m[2]}")
        print(f"| {name} |{cells} {f'≤ {target:.1f}' if target else '–'} |")
    counts = {key: sorted({str(ours[s][key].ops) for s in servers} | ({str(node[key].ops)} if node else set()),
                          key=int) for key in (DISCOVERY, JWKS, CLIENT_CREDENTIALS, CODE_SSO, CODE_LOGIN, FLOOR)}
    verifies = "/".join(str(len(ours[s][CODE_LOGIN].hashes or [])) for s in servers)
    note = (f"\nOurs above its target in bold. The hash subtracted is the mean of the {verifies} argon2 verifies "
            "the server made during the measured whole-flow run, timed where they ran (bench/hash_probe); the bench "
            "process's own figure is shown beside it. ")
    if node is not None:
        note += ("node-oidc-provider's development login page accepts any login and checks or hashes no password, "
                 "so its two whole-flow rows are the same figure; it remembers the consent given once per account "
                 "(as ours remembers a consent), keeps everything in memory in one process, and issues access, "
                 "refresh and ID tokens like ours. ")
    print(note + "Operations measured: " + ", ".join(f"{k} {'/'.join(v)}" for k, v in counts.items()) + ".")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the operation counts (0.1 = quick)")
    parser.add_argument("--threads", type=int, default=4, help="client threads (one account each)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of our server")
    parser.add_argument("--servers", default="granian",
                        help="comma-separated servers to run ours under, in order (granian, gunicorn); "
                             "the ratio uses the first")
    parser.add_argument("--node", action=argparse.BooleanOptionalAction, default=True,
                        help="measure node-oidc-provider too (bench/node)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync, gthread)")
    parser.add_argument("--hash-runs", type=int, default=50, help="argon2 verifies timed for the hash's CPU")
    parser.add_argument("--profile", type=Path, default=None,
                        help="directory for py-spy collapsed stacks of each measured run of ours "
                             "(pip install py-spy); the figures of a profiled run are inflated by the sampling")
    args = parser.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - set(SERVER_NAMES)
    if unknown or not servers:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown)) or 'none given'}")
    if args.node:
        node_executable()  # fail before the long part

    names = accounts(args.threads)
    hash_ms, params = argon2_verify_ms(args.hash_runs)  # before any thread or server runs
    ours = {server: measure_ours(server, args, names) for server in servers}
    if args.node:
        args_node = argparse.Namespace(**{**vars(args), "profile": None})
        node = measure_node(args_node, names)
    else:
        node = None
    print_table(ours, node, hash_ms, params, args, servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
