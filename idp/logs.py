"""Access logs without query strings (R-N3: tokens and national IDs never reach a log).

A sign-in URL carries ``id_token_hint``, ``login_hint``, ``state`` and authorization codes in
its query string, and the development server (``make run``) and gunicorn's access log print
request lines whole. This filter keeps the path and drops the query from every request line
those loggers write, so a log shipped to an operator's tools holds no bearer material.
"""

from __future__ import annotations

import logging
import re

_QUERY = re.compile(r"(\s/[^\s?]*)\?\S*")
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")


class StripQueryStrings(logging.Filter):
    """Rewrites ``GET /path?secret HTTP/1.1`` to ``GET /path?… HTTP/1.1`` in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _QUERY.sub(r"\1?…", message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install() -> None:
    """Attach the filter to the access loggers (idempotent: create_app may run more than once)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, StripQueryStrings) for f in logger.filters):
            logger.addFilter(StripQueryStrings())
