"""Log lines that cannot be forged, and access logs without query strings (R-N3).

Every value that reaches a log line may come from outside (a username typed on the login page,
a header, a path), so a newline in it must not start a forged line: every record's message has
its control characters escaped (``\n`` becomes ``\x0a``), whichever logger wrote it: ours,
Flask's, the server's access log. Tracebacks (added by the formatter, not the message) keep
their lines.

Access logs also lose their query strings (tokens and national IDs never reach a log). A
sign-in URL carries ``id_token_hint``, ``login_hint``, ``state`` and authorization codes in its
query string, and the development server (``make run``) and gunicorn's access log print
request lines whole. This filter keeps the path and drops the query from every request line
those loggers write, so a log shipped to an operator's tools holds no bearer material.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_QUERY = re.compile(r"(\s/[^\s?]*)\?\S*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1, line/paragraph separators) escaped."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


class SafeLogRecord(logging.LogRecord):
    """A log record whose message, once formatted, holds no control characters."""

    def getMessage(self) -> str:  # noqa: N802 - the logging module's name
        message = super().getMessage()
        return escape_controls(message) if _CONTROL.search(message) else message


def _safe_record_factory(base: Any) -> Any:
    """Wrap the process's record factory (whatever set it): its plain records become safe ones."""
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        if type(record) is logging.LogRecord:
            record.__class__ = SafeLogRecord
        return record

    factory.idp_safe = True  # type: ignore[attr-defined]
    return factory


ACCESS_LOGGERS = ("werkzeug", "gunicorn.access", "granian.access")


class StripQueryStrings(logging.Filter):
    """Rewrites ``GET /path?secret HTTP/1.1`` to ``GET /path?… HTTP/1.1`` in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _QUERY.sub(r"\1?…", message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install() -> None:
    """Escape every record's control characters and attach the query filter to the access loggers
    (idempotent: create_app may run more than once)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "idp_safe", False):
        logging.setLogRecordFactory(_safe_record_factory(current))
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, StripQueryStrings) for f in logger.filters):
            logger.addFilter(StripQueryStrings())
