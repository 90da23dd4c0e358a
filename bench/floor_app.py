"""An empty app: what the server, the loopback TCP stack and HTTP parsing cost by themselves.

bench/run.py measures it under the same server settings and load as the provider, so the table
shows how much of each figure is the server's floor rather than the provider's code: under
gunicorn as the WSGI ``app``; under Granian as ``asgi_app``, the same empty app behind the
provider's own ASGI adapter (idp/serving.py), started with the provider's Granian settings by
running this file:

    python bench/floor_app.py --port 8000 --workers 2
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"issuer":"http://127.0.0.1"}'


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]


def asgi_app() -> Any:
    """Granian's factory target: the empty app behind the provider's adapter, default limits."""
    from idp.serving import WholeRequests

    return WholeRequests(app, max_body=1048576, body_timeout=30)


if __name__ == "__main__":
    from idp.serving import granian_server

    parser = argparse.ArgumentParser(description="the empty app under Granian, as flask serve runs the provider")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    granian_server("floor_app:asgi_app", host="127.0.0.1", port=args.port, workers=args.workers, header_timeout=10,
                   access_log=False).serve()
