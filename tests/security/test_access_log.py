"""Access logs keep paths, never query strings (R-N3)."""

from __future__ import annotations

import logging

import pytest


@pytest.mark.parametrize("logger", ["werkzeug", "gunicorn.access", "granian.access"])
def test_request_lines_lose_their_query(app, caplog: pytest.LogCaptureFixture, logger: str) -> None:
    """R-N3: a logout URL with an id_token_hint is logged as its path only."""
    caplog.set_level(logging.INFO, logger=logger)
    hint = "eyJhbGciOiJSUzI1NiJ9.secret-payload.sig"
    logging.getLogger(logger).info('%s - - [%s] "%s" %s %s', "127.0.0.1", "24/Nov/2026 04:00:00",
                                   f"GET /oauth/logout?id_token_hint={hint}&state=x HTTP/1.1", "302", "-")
    line = caplog.records[-1].getMessage()
    assert hint not in line and "state=x" not in line
    assert '"GET /oauth/logout?… HTTP/1.1" 302' in line
