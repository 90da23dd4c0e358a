"""Helpers for the end-to-end tests: real server processes, a person's browser as a requests session."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DEMO_PASSWORDS = {"student": "Pupil-Demo-2026", "teacher": "Mentor-Demo-2026"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def recreate_database(url: str, suffix: str) -> str:
    """A fresh PostgreSQL database ``<database of url>_<suffix>`` (dropped first if it exists); its URL."""
    import sqlalchemy as sa

    target = sa.engine.make_url(url)
    name = f"{target.database}_{suffix}"
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return target.set(database=name).render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers (any status); fail at once if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server process exited with {proc.returncode} before answering {url}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def flask_cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run ``flask --app wsgi ARGS`` like an operator would, against the live servers' configuration."""
    out = subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, input=stdin,
                         capture_output=True, text=True, timeout=120, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed: {out.stderr[-2000:]}")
    return out.stdout


@dataclass
class Server:
    """One ``flask serve`` process of the provider (Granian's main process and its workers)."""

    base: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(env: dict[str, str], port: int, log: Path, workers: int = 1) -> Server:
    """The provider as production runs it: ``flask --app wsgi serve`` (idp/serving.py)."""
    fh = log.open("ab")
    proc = subprocess.Popen([str(VENV_BIN / "flask"), "--app", "wsgi", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", str(workers)],
                            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    fh.close()
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_http(server.base + "/.well-known/openid-configuration", proc)
    except RuntimeError:
        server.stop()
        raise RuntimeError(log.read_text(errors="replace")[-3000:]) from None
    return server


@contextlib.contextmanager
def demo_rp_process(env: dict[str, str], base: str, log: Path | None = None) -> Iterator[str]:
    """The demo relying party (``python -m clients.demo_rp``) with ``env`` (its ``DEMO_RP_ENV_FILE``),
    answering at ``base`` for the ``with`` block; stopped after it."""
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "clients.demo_rp"], cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT)
    if log is not None:
        out.close()  # type: ignore[union-attr]
    try:
        wait_http(base + "/", proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _hidden(page: str, name: str) -> str | None:
    m = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page) or \
        re.search(rf'<input[^>]*value="([^"]*)"[^>]*name="{name}"', page)
    return html.unescape(m.group(1)) if m else None


def _form_action(page: str, holding: str = 'name="allow"') -> str:
    """The action of the POST form that holds ``holding`` (the consent page has more than one form)."""
    for m in re.finditer(r'<form method="post" action="([^"]*)"(.*?)</form>', page, re.S):
        if holding in m.group(2):
            return html.unescape(m.group(1))
    raise AssertionError(page[:500])


@dataclass
class Browser:
    """A person's browser on the provider, as plain HTTP: cookies kept, redirects followed by hand
    while they stay on a provider, so the final redirect to the relying party can be read."""

    providers: tuple[str, ...]
    http: requests.Session = field(default_factory=requests.Session)

    def _on_provider(self, url: str) -> bool:
        return any(url.startswith(p) for p in self.providers)

    def follow(self, resp: requests.Response) -> requests.Response:
        while resp.status_code in (301, 302, 303) and resp.headers.get("Location"):
            location = resp.headers["Location"]
            if location.startswith("/"):
                parts = urlsplit(resp.url)
                location = f"{parts.scheme}://{parts.netloc}{location}"
            if not self._on_provider(location):
                return resp
            resp = self.http.get(location, allow_redirects=False, timeout=10)
        return resp

    def get(self, url: str) -> requests.Response:
        return self.follow(self.http.get(url, allow_redirects=False, timeout=10))

    def authorize(self, url: str, username: str = "teacher", password: str | None = None) -> str:
        """Open an authorization URL, sign in and allow if asked; return the redirect to the client.

        The HTTP tests sign the demo teacher in; the demo student is kept for the browser test, so
        that its first sign-in always meets the consent page."""
        resp = self.get(url)
        base = f"{urlsplit(resp.url).scheme}://{urlsplit(resp.url).netloc}"
        if resp.status_code == 200 and 'name="password"' in resp.text:
            data = {"csrf_token": _hidden(resp.text, "csrf_token"), "next": _hidden(resp.text, "next") or "",
                    "force": _hidden(resp.text, "force") or "", "username": username,
                    "password": password or DEMO_PASSWORDS[username]}
            resp = self.follow(self.http.post(base + "/login", data=data, allow_redirects=False, timeout=10))
        if resp.status_code == 200 and 'name="allow"' in resp.text:
            action = _form_action(resp.text)
            data = {"csrf_token": _hidden(resp.text, "csrf_token"), "allow": "y"}
            resp = self.follow(self.http.post(base + action, data=data, allow_redirects=False, timeout=10))
        assert resp.status_code == 302, (resp.status_code, resp.text[:800])
        return resp.headers["Location"]


def authorize_url(base: str, client_id: str, redirect_uri: str, **extra: str) -> tuple[str, dict[str, str], str]:
    verifier, challenge = pkce()
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "scope": "openid profile email", "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
              "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return f"{base}/oauth/authorize?{urlencode(params)}", params, verifier


def env_without_proxies() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}}
