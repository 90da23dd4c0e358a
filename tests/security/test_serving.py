"""Serving: slow clients cannot stall the service; bodies are limited in size and time (issue 9 item 2).

The adapter (idp/serving.py) is tested without a server through a fake ASGI receive/send; the
live tests start ``flask --app wsgi serve`` (Granian) on PostgreSQL + Redis, as production runs,
and talk to it over raw sockets the way a slow or hostile client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from idp import create_app
from idp.serving import WholeRequests, adapter_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from e2e_helpers import Server, env_without_proxies, flask_cli, free_port, recreate_database, start_server

BACKEND = os.environ.get("IDP_TEST_BACKEND", "postgres")
PG_URL = os.environ.get("IDP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LIMIT = 1048576  # max_request_body's default
live_only = pytest.mark.skipif(BACKEND != "postgres", reason="live tests run on PostgreSQL + Redis only")


# --- the adapter, without a server ---------------------------------------------------------------------


def _scope(path: str = "/", method: str = "GET", query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None,
           root_path: str = "", raw_path: bytes | None = None) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": raw_path if raw_path is not None else path.encode(), "query_string": query,
            "root_path": root_path, "headers": headers or [(b"host", b"sso.example.edu.tw")],
            "server": ("10.0.0.5", 8000), "client": ("192.0.2.7", 51234)}


CHUNKED = [(b"host", b"sso.example.edu.tw"), (b"transfer-encoding", b"chunked")]


def test_request_without_a_body_is_not_waited_for() -> None:
    """A GET with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 §6.3): the
    app runs without the adapter asking the server for one."""
    adapter, seen = _echo_environ()
    conn = _run(adapter, _scope("/login"), FakeConnection([b"never read"]))
    assert conn.status == 200 and conn.received == 0 and seen[0]["body"] == b""


class FakeConnection:
    """The server's side of one request: body messages to hand out, and what the app sent back."""

    def __init__(self, chunks: list[bytes] | None = None, stall_after: int | None = None,
                 then_disconnect: bool = False) -> None:
        self.chunks = list(chunks if chunks is not None else [b""])
        self.stall_after = stall_after  # after this many messages, the client sends nothing more
        self.then_disconnect = then_disconnect  # after the chunks, the client goes away
        self.received = 0
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self.stall_after is not None and self.received >= self.stall_after:
            await asyncio.sleep(3600)
        if not self.chunks:
            return {"type": "http.disconnect"}
        self.received += 1
        chunk = self.chunks.pop(0)
        more = bool(self.chunks) or self.stall_after is not None or self.then_disconnect
        return {"type": "http.request", "body": chunk, "more_body": more}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def _echo_environ() -> tuple[WholeRequests, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["body"] = environ["wsgi.input"].read()
        seen.append(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return WholeRequests(app, max_body=LIMIT, body_timeout=5, json_prefixes=("/oauth/token",)), seen


def _run(adapter: WholeRequests, scope: dict[str, Any], conn: FakeConnection) -> FakeConnection:
    asyncio.run(adapter(scope, conn.receive, conn.send))
    return conn


def test_environ_carries_what_the_client_sent() -> None:
    """R-N2: the app sees the query string, repeated headers joined, the client's address and the server's name."""
    adapter, seen = _echo_environ()
    headers = [(b"host", b"sso.example.edu.tw"), (b"accept", b"text/html"), (b"accept", b"application/json"),
               (b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"content-type", b"application/x-www-form-urlencoded"),
               (b"content-length", b"7")]
    conn = _run(adapter, _scope("/oauth/token", "POST", b"x=1&y=%20", headers), FakeConnection([b"a=1", b"&b=2"]))
    assert conn.status == 200 and conn.body == b"ok"
    env = seen[0]
    assert env["QUERY_STRING"] == "x=1&y=%20" and env["REQUEST_METHOD"] == "POST"
    assert env["HTTP_ACCEPT"] == "text/html, application/json" and env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded" and env["CONTENT_LENGTH"] == "7"
    assert env["body"] == b"a=1&b=2"
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("192.0.2.7", "51234")
    assert (env["SERVER_NAME"], env["SERVER_PORT"], env["SERVER_PROTOCOL"]) == ("10.0.0.5", "8000", "HTTP/1.1")
    assert env["wsgi.url_scheme"] == "http" and env["wsgi.input_terminated"] is True


def test_environ_paths_and_script_root() -> None:
    """R-N2: behind a path prefix the app's script root is the prefix; percent-escapes reach it as sent."""
    adapter, seen = _echo_environ()
    _run(adapter, _scope("/sso/login/\ufffd", root_path="/sso", raw_path=b"/sso/login/%FF"), FakeConnection())
    assert seen[0]["SCRIPT_NAME"] == "/sso" and seen[0]["PATH_INFO"] == "/login/\xff"


def test_underscore_headers_cannot_pose_as_proxy_headers() -> None:
    """R-N3: an ``X_Forwarded_For`` header is dropped, not read as the load balancer's X-Forwarded-For."""
    adapter, seen = _echo_environ()
    headers = [(b"host", b"x"), (b"x_forwarded_for", b"203.0.113.9"), (b"x-forwarded-for", b"198.51.100.1")]
    _run(adapter, _scope(headers=headers), FakeConnection())
    assert seen[0]["HTTP_X_FORWARDED_FOR"] == "198.51.100.1"


def test_chunked_body_gets_its_length() -> None:
    """R-N4: a chunked form body (no Content-Length) reaches the app whole, with its length."""
    adapter, seen = _echo_environ()
    _run(adapter, _scope("/login", "POST", headers=CHUNKED), FakeConnection([b"user", b"name=x"]))
    assert seen[0]["CONTENT_LENGTH"] == "10" and seen[0]["body"] == b"username=x"


def test_declared_60_mb_is_refused_before_reading() -> None:
    """R-N3: a 60 MB Content-Length gets 413 at once; not one body message is read and the app never runs."""
    adapter, seen = _echo_environ()
    conn = FakeConnection([b"x" * 1000] * 3)
    _run(adapter, _scope("/login", "POST", headers=[(b"host", b"x"), (b"content-length", b"60000000")]), conn)
    assert conn.status == 413 and conn.received == 0 and seen == []
    assert conn.headers[b"connection"] == b"close" and b"Traceback" not in conn.body


def test_chunked_body_over_the_limit_is_refused_when_it_crosses() -> None:
    """R-N3: a body without a length is refused as soon as it passes the limit, not when (if ever) it ends."""
    adapter, seen = _echo_environ()
    conn = FakeConnection([b"x" * 600_000, b"x" * 600_000], stall_after=2)
    _run(adapter, _scope("/oauth/token", "POST", headers=CHUNKED), conn)
    assert conn.status == 413 and seen == []
    assert conn.headers[b"content-type"] == b"application/json" and b"too large" in conn.body


def test_late_body_gets_408() -> None:
    """R-N3: a body that stops arriving gets 408 after the body time-out and the connection is closed."""
    seen: list[dict] = []
    adapter = WholeRequests(lambda e, s: seen.append(e) or [], max_body=LIMIT, body_timeout=0.1)
    conn = FakeConnection([b"a"], stall_after=1)
    started = time.monotonic()
    _run(adapter, _scope("/login", "POST", headers=[(b"host", b"x"), (b"content-length", b"1000")]), conn)
    assert conn.status == 408 and conn.headers[b"connection"] == b"close" and seen == []
    assert time.monotonic() - started < 2


def test_a_late_body_does_not_hold_up_or_cancel_the_others() -> None:
    """R-N3: one worker's sweep refuses only the late body; complete requests around it are answered, before and
    after, and the worker goes on answering."""
    adapter = WholeRequests(lambda e, s: (s("200 OK", []), [b"ok"])[1], max_body=LIMIT, body_timeout=0.2)
    headers = [(b"host", b"x"), (b"content-length", b"3")]
    late, first, then = FakeConnection([b"a"], stall_after=1), FakeConnection([b"abc"]), FakeConnection([b"abc"])

    async def run() -> None:
        slow = asyncio.create_task(adapter(_scope("/login", "POST", headers=headers), late.receive, late.send))
        await adapter(_scope("/login", "POST", headers=headers), first.receive, first.send)
        await slow
        await adapter(_scope("/login", "POST", headers=headers), then.receive, then.send)

    asyncio.run(run())
    assert (first.status, late.status, then.status) == (200, 408, 200)


def test_client_gone_gets_no_answer() -> None:
    """R-N4: a client that disconnects mid-body is not answered and the app never sees half a request."""
    adapter, seen = _echo_environ()
    conn = FakeConnection([b"abc"], then_disconnect=True)
    _run(adapter, _scope("/login", "POST", headers=[(b"host", b"x"), (b"content-length", b"10")]), conn)
    assert seen == [] and conn.sent == []


def test_lifespan_is_answered() -> None:
    """R-N2: the server's start and stop messages are acknowledged and the shutdown hook runs."""
    stopped: list[bool] = []
    adapter = WholeRequests(lambda e, s: [], max_body=1, body_timeout=1, on_shutdown=lambda: stopped.append(True))
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return inbox.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(adapter({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"] and stopped


def test_provider_behind_the_adapter(app) -> None:
    """R-O1: a token request whose body comes in two pieces reaches the provider whole (its client_id is read)."""
    adapter = adapter_for(app)
    body = b"grant_type=client_credentials&client_id=nobody&client_secret=wrong"
    headers = [(b"host", b"localhost"), (b"content-type", b"application/x-www-form-urlencoded"),
               (b"content-length", str(len(body)).encode())]
    conn = _run(adapter, _scope("/oauth/token", "POST", headers=headers), FakeConnection([body[:20], body[20:]]))
    assert conn.status in (400, 401) and b"invalid_client" in conn.body and b"does not exist" in conn.body, conn.body


FORM_BODIES = [b"grant_type=client_credentials&scope=a+b%20c", b"a=1&a=2&b=&c", b"x=%E4%B8%AD%E6%96%87&y=%ZZ%e4",
               b"n=%FF%FE&m=1", b"\xff\xfe=1", b"", b"&&=&a=b=c;d=e"]


@pytest.mark.parametrize("body", FORM_BODIES)
def test_a_form_read_through_the_adapter_is_what_werkzeug_reads(app_config, body: bytes) -> None:
    """R-N3: the adapter's fast form path (WholeBodyRequest) gives the view exactly the form Werkzeug's
    own parser gives under any other server: repeated and blank names, '+', bad escapes, bytes that
    are not UTF-8, an empty body."""
    import json

    from flask import request

    from idp.extensions import csrf

    app = create_app(app_config)

    @app.post("/_test/form")
    @csrf.exempt
    def echo_form() -> dict[str, Any]:
        return {"form": list(request.form.lists()), "files": len(request.files)}

    headers = [(b"host", b"localhost"), (b"content-type", b"application/x-www-form-urlencoded"),
               (b"content-length", str(len(body)).encode())]
    conn = _run(adapter_for(app), _scope("/_test/form", "POST", headers=headers), FakeConnection([body]))
    werkzeug = app.test_client().post("/_test/form", data=body, content_type="application/x-www-form-urlencoded")
    assert conn.status == werkzeug.status_code == 200
    assert json.loads(conn.body) == werkzeug.json


def test_flask_refuses_bodies_over_the_limit_under_any_server(app_config) -> None:
    """R-N3: under any server (here Flask's test client) a body over max_request_body gets 413."""
    app = create_app({**app_config, "max_request_body": 1000})
    resp = app.test_client().post("/login", data={"username": "x" * 2000, "password": "y"})
    assert resp.status_code == 413


# --- live: flask serve on PostgreSQL + Redis ----------------------------------------------------------------


@pytest.fixture(scope="module")
def serving_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated database of its own (``<test database>_serving``), Redis with a prefix of its own."""
    if BACKEND != "postgres":
        pytest.skip("live tests run on PostgreSQL + Redis only")
    env = env_without_proxies()
    env.update(IDP_CONFIG="testing", IDP_DATABASE_URL=recreate_database(PG_URL, "serving"),
               IDP_REDIS_URL=REDIS_URL, IDP_STORE_PREFIX=f"serving{os.getpid()}:",
               IDP_KEYS_DIR=str(tmp_path_factory.mktemp("serving-keys")), IDP_LOG_LEVEL="WARNING")
    flask_cli(env, "db", "upgrade")
    return env


def _serve(env: dict[str, str], log: Path, workers: int = 1, **settings: str) -> Iterator[Server]:
    port = free_port()
    server = start_server(dict(env, IDP_ISSUER=f"http://127.0.0.1:{port}", **settings), port, log, workers=workers)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(serving_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``flask serve`` with two workers and the default limits."""
    yield from _serve(serving_env, tmp_path_factory.mktemp("serving") / "server.log", workers=2)


@pytest.fixture
def impatient_server(serving_env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    """``flask serve`` with one-second header and body time-outs."""
    yield from _serve(serving_env, tmp_path / "server.log", IDP_REQUEST_HEADER_TIMEOUT="1",
                      IDP_REQUEST_BODY_TIMEOUT="1")


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _is_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def _answer(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return out


class Dripper:
    """Slow clients: sockets that send one header line every ``header_every`` seconds, and sockets
    that announce a 1000-byte body and send it one byte a second."""

    def __init__(self, base: str, slow_headers: int, slow_bodies: int, header_every: float = 2.0) -> None:
        host = base.removeprefix("http://")
        self.header_socks = [_connect(base) for _ in range(slow_headers)]
        self.body_socks = [_connect(base) for _ in range(slow_bodies)]
        for s in self.header_socks:
            s.sendall(f"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: {host}\r\n".encode())
        for s in self.body_socks:
            s.sendall(f"POST /oauth/token HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode())
        self.header_every = header_every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()

    def _drip(self) -> None:
        tick = 0
        while not self.stop.wait(1.0):
            tick += 1
            for s in self.body_socks:
                self._send(s, b"a")
            if tick % int(self.header_every) == 0:
                for i, s in enumerate(self.header_socks):
                    self._send(s, f"X-Slow-{tick}: {i}\r\n".encode())

    @staticmethod
    def _send(sock: socket.socket, data: bytes) -> None:
        with contextlib.suppress(OSError):
            sock.sendall(data)

    def open_count(self) -> int:
        return sum(_is_open(s) for s in self.header_socks + self.body_socks)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for s in self.header_socks + self.body_socks:
            s.close()


@live_only
@pytest.mark.live
def test_slow_clients_do_not_stall_the_service(server: Server) -> None:
    """R-N3: with 200 slow-header and 20 slow-body sockets open, discovery and the token endpoint answer within 2 s."""
    dripper = Dripper(server.base, slow_headers=200, slow_bodies=20)
    try:
        time.sleep(2.5)  # every slow socket has started; the bodies have dripped, the headers trickled once
        timings = []
        for _ in range(8):
            started = time.monotonic()
            resp = requests.get(server.base + "/.well-known/openid-configuration", timeout=2)
            timings.append(time.monotonic() - started)
            assert resp.status_code == 200
        started = time.monotonic()
        token = requests.post(server.base + "/oauth/token", data={"grant_type": "client_credentials"},
                              auth=("nobody", "wrong"), timeout=2)
        timings.append(time.monotonic() - started)
        assert token.status_code < 500, token.text  # any answer: the unknown client is refused
        assert max(timings) < 2, timings
        assert dripper.open_count() == 220  # the slow clients were all still connected throughout
    finally:
        dripper.close()


@live_only
@pytest.mark.live
def test_declared_body_over_the_limit_is_refused_at_once(server: Server) -> None:
    """R-N3: a POST declaring 60 MB gets 413 before it sends any of it, and the connection is closed."""
    sock = _connect(server.base)
    try:
        started = time.monotonic()
        sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 60000000\r\n\r\n")
        answer = _answer(sock, 5)
        assert answer.startswith(b"HTTP/1.1 413 ") and time.monotonic() - started < 1
        assert b"Traceback" not in answer
    finally:
        sock.close()


@live_only
@pytest.mark.live
def test_chunked_body_over_the_limit_is_refused(server: Server) -> None:
    """R-N3: a chunked body that passes the limit gets 413 without the client ever finishing it."""
    sock = _connect(server.base)
    try:
        sock.sendall(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(LIMIT // len(chunk) + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = _answer(sock, 5)  # the body was never terminated (no 0-length chunk)
        assert answer.startswith(b"HTTP/1.1 413 ") and b"too large" in answer
    finally:
        sock.close()


@live_only
@pytest.mark.live
def test_late_body_and_late_headers_are_cut_off(impatient_server: Server) -> None:
    """R-N3: a body still incomplete after the body time-out gets 408; headers not done in time close the socket."""
    body_sock, header_sock = _connect(impatient_server.base), _connect(impatient_server.base)
    try:
        started = time.monotonic()
        body_sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                          b"Content-Length: 1000\r\n\r\nusername=")
        header_sock.sendall(b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: x\r\n")
        for i in range(8):  # one header line every 0.4 s: never complete
            try:
                header_sock.sendall(b"X-Slow-%d: y\r\n" % i)
            except OSError:
                break
            time.sleep(0.4)
        answer = _answer(body_sock, 5)
        assert answer.startswith(b"HTTP/1.1 408 ") and b"Traceback" not in answer
        assert time.monotonic() - started < 5
        assert _answer(header_sock, 3) == b"" and not _is_open(header_sock)
    finally:
        body_sock.close()
        header_sock.close()


@live_only
@pytest.mark.live
def test_more_slow_connections_than_granians_default(server: Server) -> None:
    """R-N3: 1,100 sockets that never finish their headers (past Granian's default cap) do not stall discovery."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard) if hard != resource.RLIM_INFINITY else 2048, hard))
    dripper = Dripper(server.base, slow_headers=1100, slow_bodies=0)
    try:
        time.sleep(1.0)
        for _ in range(3):
            started = time.monotonic()
            assert requests.get(server.base + "/.well-known/openid-configuration", timeout=2).status_code == 200
            assert time.monotonic() - started < 2
        assert dripper.open_count() == 1100
    finally:
        dripper.close()
