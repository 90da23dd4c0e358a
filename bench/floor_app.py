"""An empty WSGI app: what gunicorn, the loopback TCP stack and HTTP parsing cost by themselves.

bench/run.py measures it under the same gunicorn settings and load as the provider, so the
table shows how much of each figure is the server's floor rather than the provider's code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"issuer":"http://127.0.0.1"}'


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
