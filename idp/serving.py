"""How the provider is served: Granian reads whole requests, then the Flask app answers them (R-N3, R-N2).

Sync WSGI workers (gunicorn's) read each request themselves, so a client that sends its headers or
its body slowly holds a worker for as long as it likes: four such sockets stopped the service
(issue 9 item 2). Here Granian (Rust, asynchronous) reads the request line and headers, within
``request_header_timeout``; this module's ASGI adapter then awaits the whole body on the event loop,
within ``request_body_timeout`` and up to ``max_request_body`` bytes, and only then calls the Flask
app, inline, with a PEP 3333 environ whose ``wsgi.input`` is already in memory. A slow client costs
a waiting coroutine, never a worker. The app is not run in a thread pool: the hop to a thread (or
asgiref's ``WsgiToAsgi``) cost more than twice the CPU per request of calling it inline, and each
worker answers one complete request at a time, as a sync worker does.

Requests the adapter refuses before the app sees them (too large, too slow) get a short plain-text
or JSON answer and the connection is closed; they never reach a traceback.

``flask --app wsgi serve`` starts it (``make run``, the end-to-end tests, ``make bench`` and the
production command line all use it); ``asgi_app`` is the target each Granian worker builds.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import io
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import click
from flask import Flask, Request, current_app
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# The whole body, as the adapter read it, beside ``wsgi.input`` in the environ (``WholeBodyRequest``).
BODY_KEY = "idp.whole_body"

# The answers the adapter gives on its own. OAuth clients read ``error_description`` (ASCII,
# RFC 6749 §5.2); people read the plain text, in the service's default language, then English.
REFUSALS: dict[int, tuple[str, Any]] = {
    408: ("request body not received in time", _l("The request took too long to arrive. Please try again.")),
    413: ("request body too large", _l("The upload is too large.")),
    500: ("server error", _l("Something went wrong on our side. Please try again later.")),
}

# Granian's access log, in the app's log format (create_app's basicConfig): no query string, whose
# tokens and codes must never reach a log (idp/logs.py).
ACCESS_LOG_FORMAT = '%(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f'
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {
        "_granian": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "granian.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


class Refused(Exception):
    """The request is answered by the adapter itself with ``status``; the app never sees it."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class ClientGone(Exception):
    """The client disconnected before its request was complete: nobody to answer."""


class WholeRequests:
    """ASGI application that hands only complete requests to a WSGI app (see the module docstring).

    ``refusal_text`` maps a status to the plain-text body people get for it; ``on_shutdown`` runs
    when the server stops the worker (ASGI lifespan), e.g. to close database connections.
    """

    def __init__(self, wsgi_app: WSGIApp, *, max_body: int, body_timeout: float,
                 refusal_text: dict[int, str] | None = None, on_shutdown: Callable[[], None] | None = None,
                 json_prefixes: tuple[str, ...] = ()) -> None:
        self.wsgi_app = wsgi_app
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.refusal_text = refusal_text or {status: f"{english}\n" for status, (english, _) in REFUSALS.items()}
        self.on_shutdown = on_shutdown
        self.json_prefixes = json_prefixes
        # Bodies being read: task → deadline. One sweep per worker cancels the late ones
        # (``_sweep``): a timer per request (``asyncio.timeout``) cost a tenth of a token request.
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._late: set[asyncio.Task[Any]] = set()
        self._sweeping: asyncio.AbstractEventLoop | None = None  # the loop the sweep is scheduled on
        # A late body is refused at most this long after its time-out: a quarter of it, at most a second.
        self._sweep_every = min(1.0, max(0.01, body_timeout / 4))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)
        elif kind == "websocket":  # not offered: refuse the handshake (the server answers 403)
            await receive()
            await send({"type": "websocket.close", "code": 1008})
        else:
            raise RuntimeError(f"unsupported ASGI scope type {kind!r}")

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.on_shutdown is not None:
                    try:
                        self.on_shutdown()
                    except Exception:
                        log.exception("shutdown hook failed")
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self.read_body(scope, receive)
        except ClientGone:
            return
        except Refused as refused:
            await self.refuse(scope, send, refused.status)
            return
        status, headers, content = self.call_wsgi(build_environ(scope, body))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body, or ``Refused(413)`` as soon as it is known to be too large (a declared
        length is refused before a byte is read), or ``Refused(408)`` when it is late."""
        declared, chunked = body_framing(scope)
        if declared is not None and declared > self.max_body:
            raise Refused(413)
        if not chunked and not declared:
            # No Content-Length and no Transfer-Encoding: no body (RFC 9112 §6.3), nothing to
            # await (most requests: a GET costs a third less of the server's CPU without it).
            return b""
        task = asyncio.current_task()
        if task is None:  # not run as a task (no server does that): a timer of its own
            try:
                async with asyncio.timeout(self.body_timeout):
                    return await self._receive_body(receive)
            except TimeoutError:
                raise Refused(408) from None
        loop = asyncio.get_running_loop()
        self._reading[task] = loop.time() + self.body_timeout
        if self._sweeping is not loop:
            self._sweeping = loop
            loop.call_later(self._sweep_every, self._sweep)
        try:
            return await self._receive_body(receive)
        except asyncio.CancelledError:
            if task in self._late:  # cancelled by the sweep, not by the server
                task.uncancel()
                raise Refused(408) from None
            raise
        finally:
            self._reading.pop(task, None)
            self._late.discard(task)

    async def _receive_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body:
                    raise Refused(413)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    def _sweep(self) -> None:
        """Cancel every body read past its deadline; runs while any body is being read."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in list(self._reading.items()):
            if deadline <= now and task not in self._late:
                self._late.add(task)
                task.cancel()
        if self._reading:
            loop.call_later(self._sweep_every, self._sweep)
        else:
            self._sweeping = None

    async def refuse(self, scope: Scope, send: Send, status: int) -> None:
        """A short answer, then the connection closes: the rest of the body is never read."""
        if scope.get("path", "").startswith(self.json_prefixes) or _accepts_json(scope):
            english = REFUSALS[status][0]
            body = b'{"error":"invalid_request","error_description":"' + english.encode() + b'"}'
            content_type = b"application/json"
        else:
            body = self.refusal_text[status].encode("utf-8")
            content_type = b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                                (b"cache-control", b"no-store"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    def call_wsgi(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Run the WSGI app to the end (its ``close()`` included) and return status, headers, body."""
        response: list[Any] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            # Nothing has been sent yet (the body is buffered), so a later call may replace an earlier.
            response[:] = [status, headers]
            return chunks.append  # PEP 3333's write()

        try:
            result = self.wsgi_app(environ, start_response)
            try:
                for chunk in result:
                    if chunk:
                        chunks.append(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if not response:
                raise RuntimeError("the WSGI app returned without calling start_response")
        except Exception:
            log.exception("unhandled error serving %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            body = self.refusal_text[500].encode("utf-8")
            return 500, [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")], body
        status, headers = response
        return (int(status[:3]), [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
                chunks[0] if len(chunks) == 1 else b"".join(chunks))


def body_framing(scope: Scope) -> tuple[int | None, bool]:
    """The request's Content-Length (None if absent or unreadable) and whether it declared a
    Transfer-Encoding (a chunked body)."""
    length: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
                chunked = True  # unreadable: read what comes, within the limits
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


def _accepts_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept":
            return b"application/json" in value and b"text/html" not in value
    return False


def build_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The PEP 3333 environ of a complete ASGI HTTP request.

    Paths are the exact bytes the client sent, percent-decoded, as latin-1 strings (what a WSGI
    server gives; the ASGI ``path`` has already been decoded as UTF-8, lossily). Repeated headers
    are joined with ", " (cookies with "; "). Header names with an underscore are dropped, as
    gunicorn and Werkzeug do: ``X_Forwarded_For`` would otherwise become ``HTTP_X_FORWARDED_FOR`` and
    pass for the load balancer's header.
    """
    raw = scope.get("raw_path")
    if raw:
        raw = raw.split(b"?", 1)[0]
        path = (unquote_to_bytes(raw) if b"%" in raw else raw).decode("latin-1")
    else:
        path = scope["path"].encode("utf-8").decode("latin-1")
    script_name = scope.get("root_path", "").encode("utf-8").decode("latin-1")
    if script_name and path.startswith(script_name):
        path = path[len(script_name):]
    scheme = scope.get("scheme", "http")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(body),
        BODY_KEY: body,  # the same bytes, for WholeBodyRequest's form
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    server = scope.get("server")
    if server:
        environ["SERVER_NAME"] = str(server[0])
        environ["SERVER_PORT"] = str(server[1]) if server[1] is not None else ("443" if scheme == "https" else "80")
    else:  # a Unix socket
        environ["SERVER_NAME"] = "localhost"
        environ["SERVER_PORT"] = "443" if scheme == "https" else "80"
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    for name, value in scope["headers"]:
        key = name.decode("latin-1")
        if "_" in key:
            continue
        key = key.upper().replace("-", "_")
        text = value.decode("latin-1")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + text
        else:
            environ[key] = text
    if body and "CONTENT_LENGTH" not in environ:  # a chunked body, now complete
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def adapter_for(app: Flask) -> WholeRequests:
    """The ASGI adapter around ``app`` with the app's limits, messages and shutdown."""
    from idp.errors import API_PREFIXES
    from idp.extensions import db

    settings = app.extensions["idp.settings"]
    texts = {}
    with app.app_context():
        for status, (_, message) in REFUSALS.items():
            with force_locale(settings.default_locale):
                local = str(message)
            with force_locale("en"):
                english = str(message)
            texts[status] = f"{local}\n" if local == english else f"{local}\n{english}\n"

    def dispose() -> None:
        with app.app_context():
            db.engine.dispose()

    return WholeRequests(app, max_body=settings.max_request_body, body_timeout=settings.request_body_timeout,
                         refusal_text=texts, on_shutdown=dispose, json_prefixes=API_PREFIXES)


def asgi_app() -> WholeRequests:
    """Granian's target, called once in each worker process: a fresh app behind the adapter."""
    from idp import create_app

    adapter = adapter_for(create_app())
    settle_heap()
    return adapter


def settle_heap() -> None:
    """Keep what a worker made at start (modules, the app, its config) out of the garbage
    collector's scans: it lives as long as the process, yet every full collection walked all of it
    (~150,000 objects, a millisecond of every sign-in on average; issue 11). Objects made later
    are collected as usual."""
    gc.collect()
    gc.freeze()


# Connections one worker holds at once. Granian's "backpressure" counts connections, idle and
# half-sent ones included, and its default (1024 / workers) let ~1,000 slow sockets stall the
# service until the header time-out. A waiting connection costs about 19 KB in the worker, so
# 8192 per worker is ~150 MB at most; beyond that, the load balancer's per-client connection
# limit is the defence.
CONNECTIONS_PER_WORKER = 8192


def granian_server(target: str, *, host: str, port: int, workers: int, header_timeout: float,
                   access_log: bool, factory: bool = True) -> Any:
    """A Granian server configured as the provider is served (also used for the bench's floor app).

    HTTP/1.1 only (a TLS-terminating load balancer speaks it to the backends), no WebSockets, the
    header time-out in milliseconds, room for many slow connections, failed workers respawned.
    """
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings

    _raise_open_files_limit(workers * CONNECTIONS_PER_WORKER + 1024)
    # uvloop's event loop: the adapter awaits each request's body and sends its answer on it, and
    # under asyncio's own loop that cost a client_credentials grant 15 % more server CPU (issue 11).
    return Granian(target, address=host, port=port, interface=Interfaces.ASGI, workers=workers, factory=factory,
                   loop=Loops.uvloop,
                   http=HTTPModes.http1, websockets=False, backlog=2048, backpressure=CONNECTIONS_PER_WORKER,
                   http1_settings=HTTP1Settings(header_read_timeout=max(1, int(header_timeout * 1000))),
                   log_access=access_log, log_access_format=ACCESS_LOG_FORMAT, log_dictconfig=LOG_CONFIG,
                   respawn_failed_workers=True)


def _raise_open_files_limit(wanted: int) -> None:
    """Each connection is a file descriptor: lift the soft limit (often 1024) towards the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            log.warning("could not raise the open-files limit from %d to %d", soft, target)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning("open-files limit %d is below the %d connections the workers may hold: raise it "
                    "(systemd: LimitNOFILE=%d)", soft, wanted, wanted)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes. Default: one per core, or one on the in-process store.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="Log one line per request (path without its query string).")
@with_appcontext
def serve(host: str, port: int, workers: int | None, access_log: bool) -> None:
    """Serve the provider with Granian: whole requests only, time-outs and a body limit from the settings."""
    settings = current_app.extensions["idp.settings"]
    if workers is None:
        workers = (os.cpu_count() or 1) if settings.redis_url else 1
    elif workers > 1 and not settings.redis_url:
        raise click.UsageError(
            "the in-process store (redis_url empty) lives in one process: serve it with --workers 1, "
            "or set IDP_REDIS_URL")
    granian_server("idp.serving:asgi_app", host=host, port=port, workers=workers,
                   header_timeout=settings.request_header_timeout, access_log=access_log).serve()


class WholeBodyRequest(Request):
    """Flask's request, parsing a URL-encoded form straight from the body the adapter already holds.

    Werkzeug wraps ``wsgi.input`` in a length-limited stream, builds a form-data parser and reads the
    stream back before the same ``parse_qsl`` call: a tenth of a client_credentials request's CPU,
    for a body already read, limited and complete (issue 11). Same result as Werkzeug's parser:
    blank values kept, repeated names kept in order, undecodable bytes kept percent-encoded, a body
    that is not UTF-8 an empty form. Any other body, or a request that did not come through the
    adapter (the test client, another server), goes Werkzeug's way."""

    def _load_form_data(self) -> None:
        body = self.environ.get(BODY_KEY)
        if body is None or "form" in self.__dict__ or self.mimetype != "application/x-www-form-urlencoded":
            super()._load_form_data()
            return
        try:
            items = parse_qsl(body.decode(), keep_blank_values=True, errors="werkzeug.url_quote")
        except ValueError:  # not UTF-8: Werkzeug's (silent) parser gives an empty form
            items = []
        self.__dict__["form"] = self.parameter_storage_class(items)
        self.__dict__["files"] = self.parameter_storage_class()


_CO_COROUTINE = inspect.CO_COROUTINE
# In the environ of a request answered before Flask's dispatch: its context binds no URL map.
NO_ROUTING = "idp.no_routing"


class App(Flask):
    """Flask, with what this provider does on every request made cheaper (issue 11)."""

    request_class = WholeBodyRequest

    def create_url_adapter(self, request: Request | None) -> Any:
        """No URL map bound for a request that a layer before Flask's dispatch answers itself and
        marked so (``NO_ROUTING``: the token endpoint, which calls its one view directly): binding
        the map to the request and matching it were a twentieth of a client_credentials grant."""
        if request is not None and request.environ.get(NO_ROUTING):
            return None
        return super().create_url_adapter(request)

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask asks this of every hook and view on every request; its ``inspect`` test unwraps
        partials and methods each time (a twentieth of a small page). A plain function's or a bound
        method's code flags answer the same question; anything else goes Flask's way."""
        code = getattr(func, "__code__", None)
        if code is not None and not code.co_flags & _CO_COROUTINE:
            return func
        return super().ensure_sync(func)


def init_app(app: Flask) -> None:
    app.cli.add_command(serve)
