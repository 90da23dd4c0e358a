"""Named rate limits on failures (DESIGN rule 7): checked before the attempt, counted on failure.

Built on the ``limits`` library (fixed windows) with Redis storage when the service has Redis
(every process sees the same counters) and memory storage on the embedded default. Limits
are named for the action, e.g. ``login.account`` and ``login.ip``.

Why ``limits`` rather than counters in ``idp.extensions.store()``: it is what DESIGN rule 6
names, its Redis and memory storages behave the same (atomic increment + expiry), and its
window statistics give the exact ``Retry-After``, so there is no window arithmetic of our own
to get wrong. Its keys live under ``<store_prefix>limits`` in the same Redis as the store.
Its storage errors are wrapped (``wrap_exceptions``) and handled by the store-down policy below.

When Redis cannot be reached the behaviour is the setting ``rate_limit_when_store_down``:
``closed`` (default) refuses the attempt with 503, because an attacker who can take the
store down must not thereby get unlimited password guesses; ``open`` lets it through and
logs a warning, for deployments that prefer availability. (A password sign-in also needs the
store for its SSO session, so with the one Redis down it ends in a 503 either way; the policy
decides whether the limiter itself refuses, which matters for actions that need no other
store state.)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Flask, current_app
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter

from idp.errors import RateLimited, ServiceUnavailable
from idp.extensions import settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """``amount`` failures per ``window`` seconds for one identifier of action ``name``."""

    name: str
    amount: int
    window: int

    @property
    def item(self) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(self.amount, self.window, namespace=self.name)


def _limiter() -> FixedWindowRateLimiter:
    return current_app.extensions["idp.ratelimiter"]


def _store_down(exc: Exception) -> bool:
    """Apply the configured policy; True means let the attempt through."""
    if settings().rate_limit_when_store_down == "open":
        log.warning("rate-limit store unreachable (%s): failing open", type(exc).__name__)
        return True
    log.error("rate-limit store unreachable (%s): failing closed", type(exc).__name__)
    raise ServiceUnavailable() from exc


def check(limit: Limit, identifier: str) -> None:
    """Raise ``RateLimited`` if ``identifier`` has used up ``limit``; touches nothing."""
    try:
        if _limiter().test(limit.item, identifier):
            return
        stats = _limiter().get_window_stats(limit.item, identifier)
    except Exception as exc:  # the storage's connection errors differ by backend
        if _store_down(exc):
            return
        raise
    raise RateLimited(retry_after=max(1, int(stats.reset_time - time.time())))


def count_failure(limit: Limit, identifier: str) -> bool:
    """Count one failure; True when this failure used up the limit."""
    try:
        _limiter().hit(limit.item, identifier)
        return not _limiter().test(limit.item, identifier)
    except Exception as exc:
        _store_down(exc)
        return False


def clear(limit: Limit, identifier: str) -> None:
    try:
        _limiter().clear(limit.item, identifier)
    except Exception as exc:  # clearing is best effort; the window expires anyway
        log.warning("could not clear rate limit %s: %s", limit.name, type(exc).__name__)


def login_account() -> Limit:
    s = settings()
    return Limit("login.account", s.login_failures_per_account, s.login_failure_window)


def login_ip() -> Limit:
    s = settings()
    return Limit("login.ip", s.login_failures_per_ip, s.login_failure_window)


def nationalid_lookup() -> Limit:
    """Operator look-ups by national ID, per operator per hour (every look-up counts, found or not)."""
    return Limit("nationalid.lookup", settings().nationalid_lookups_per_operator, 3600)


def init_app(app: Flask) -> None:
    s = app.extensions["idp.settings"]
    if s.redis_url:
        storage = RedisStorage(s.redis_url, key_prefix=f"{s.store_prefix}limits", wrap_exceptions=True,
                               socket_timeout=2, socket_connect_timeout=2)
    else:
        storage = MemoryStorage()
    app.extensions["idp.ratelimiter"] = FixedWindowRateLimiter(storage)
