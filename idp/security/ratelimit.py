"""Named rate limits (DESIGN rule 7): hard limits on failures, and throttles that slow guessing down.

Two shapes, because an attacker must be stopped without being able to lock the owner out:

- **Throttles** (``Throttle``, ``attempt``): the first ``free`` failures per identifier cost nothing;
  from then on each attempt closes a gate behind it for a doubling delay (1 s, 2 s, 4 s …
  ``max_delay``), so guessing slows to one try per ``max_delay`` while the owner, who knows the
  password, waits at most that long. An attempt is *reserved* before it is made (one atomic
  increment, then an atomic set-if-absent of the gate) and given back only when it succeeds, so
  twenty parallel guesses cannot overshoot the free allowance. Counts are forgotten ``window``
  seconds after the last failure. They live in the service's store under a hash of the
  identifier (no account names in Redis).
- **Limits** (``Limit``, ``check``/``count_failure``): a fixed number of failures per window, then
  refusal until the window ends; for ceilings an honest user never meets (failures per address
  across all accounts, operator look-ups, client authentication per address).

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

import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask, current_app
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter

from idp.errors import RateLimited, ServiceUnavailable
from idp.extensions import settings, store
from idp.store import Batch, StoreUnavailable

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


# -- throttles ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Throttle:
    """``free`` failures per identifier, then a doubling wait between attempts up to ``max_delay``."""

    name: str
    free: int
    max_delay: int
    window: int

    def delay(self, n: int) -> int:
        """Seconds the ``n``-th attempt (``n >= free``) keeps the next one waiting."""
        return min(self.max_delay, 2 ** min(n - self.free, 30))


def _keys(throttle: Throttle, identifier: str) -> tuple[str, str]:
    digest = hashlib.sha256(identifier.encode()).hexdigest()[:32]
    base = f"throttle:{throttle.name}:{digest}"
    return base + ":n", base + ":gate"


def attempt(items: Iterable[tuple[Throttle, str]]) -> bool:
    """Reserve one attempt under every (throttle, identifier) or raise ``RateLimited`` with the
    wait; a refusal gives back what this call had reserved. True when the attempt was past a
    free allowance (it closed a gate behind it): a failure then is worth an audit row.

    One store round trip when every count is within its free allowance (the usual case): all
    gates are looked at and all counts reserved together, and a closed gate gives them back."""
    items = list(items)
    reserved: list[tuple[Throttle, str, bool]] = []
    try:
        batch = store().batch()
        for throttle, identifier in items:
            count_key, gate_key = _keys(throttle, identifier)
            batch.ttl(gate_key).incr(count_key, throttle.window, refresh=True)
        answers = batch.execute()
        reserved = [(throttle, identifier, False) for throttle, identifier in items]
        closed = [wait for wait in answers[0::2] if wait]
        if closed:
            raise RateLimited(retry_after=max(1, max(closed)))
        for i, ((throttle, identifier), n) in enumerate(zip(items, answers[1::2], strict=True)):
            if n < throttle.free:
                continue
            gate_key = _keys(throttle, identifier)[1]
            if not store().add(gate_key, "1", throttle.delay(n)):  # a parallel attempt closed it first
                raise RateLimited(retry_after=max(1, store().ttl(gate_key) or 1))
            reserved[i] = (throttle, identifier, True)
        return any(gated for _, _, gated in reserved)
    except RateLimited:
        batch = store().batch()
        for throttle, identifier, gated in reserved:
            count_key, gate_key = _keys(throttle, identifier)
            batch.incr(count_key, throttle.window, -1)
            if gated:
                batch.delete(gate_key)
        batch.execute()
        raise
    except StoreUnavailable as exc:
        _store_down(exc)
        return False


def succeeded(items: Iterable[tuple[Throttle, str]], batch: Batch | None = None) -> None:
    """The attempt was right: forget the failures and open the gates. With ``batch``, queued there
    to go with the caller's own writes (a sign-in's new session: one round trip for both)."""
    keys = [key for throttle, identifier in items for key in _keys(throttle, identifier)]
    if batch is not None:
        batch.delete(*keys)
        return
    try:
        store().delete(*keys)
    except StoreUnavailable as exc:  # best effort: the counts expire anyway
        log.warning("could not clear throttles: %s", type(exc).__name__)


@dataclass(frozen=True)
class Look:
    """What a set of throttles says now, read in one round trip: ``wait`` seconds until every gate
    is open (0: an attempt may be made now; a gate in its last second counts as one second, the
    stores round the time left down or to the nearest second), and ``past_free`` when any has
    used up its free failures, so the next attempt should prove a person is typing (a captcha)."""

    wait: int = 0
    past_free: bool = False


def look(items: Iterable[tuple[Throttle, str]]) -> Look:
    """Only looks: reserves and counts nothing, so asking costs the owner nothing. Store down: the
    ``rate_limit_when_store_down`` policy (open: nothing to wait for, no captcha)."""
    items = list(items)
    try:
        batch = store().batch()
        for throttle, identifier in items:
            count_key, gate_key = _keys(throttle, identifier)
            batch.get(count_key).ttl(gate_key)
        answers = batch.execute()
    except StoreUnavailable as exc:
        _store_down(exc)
        return Look()
    counts, gates = answers[0::2], answers[1::2]
    return Look(
        wait=max((max(1, ttl) for ttl in gates if ttl is not None), default=0),
        past_free=any(raw is not None and int(raw) >= throttle.free
                      for (throttle, _), raw in zip(items, counts, strict=True)))


def past_free(items: Iterable[tuple[Throttle, str]]) -> bool:
    """True when any (throttle, identifier) has used up its free failures (see ``Look``)."""
    return look(items).past_free


def wait(items: Iterable[tuple[Throttle, str]]) -> int:
    """Seconds until every gate of these (throttle, identifier) is open (see ``Look``)."""
    return look(items).wait


def login_pair() -> Throttle:
    """Failures of one account from one address (a classmate at the school's one NAT address
    slows only their own guesses, not the owner at home)."""
    s = settings()
    return Throttle("login.pair", s.login_free_failures, s.login_max_delay, s.login_failure_window)


def login_account() -> Throttle:
    """Failures of one account from every address together (guessing spread over many addresses)."""
    s = settings()
    return Throttle("login.account", s.login_failures_per_account, s.login_max_delay, s.login_failure_window)


def login_device() -> Throttle:
    """Failures from a browser that signed in to the account before (its device cookie): the
    owner's own browser is judged by its own record, not by what strangers did."""
    s = settings()
    return Throttle("login.device", s.login_free_failures, s.login_max_delay, s.login_failure_window)


# -- unlocking one account's sign-in throttles (the operator console) ----------------------------
# Throttle counters live under a hash of their identifier, so an account's counters cannot be
# found and deleted by its name (one per address it was tried from, one per trusted browser).
# Instead each account has an epoch that is part of those identifiers: unlocking bumps it, and the
# old counters, no longer looked at, expire on their own. The epoch outlives every counter.
EPOCH_LIFETIME = 30 * 86400


def _epoch_key(username: str) -> str:
    return "throttle-epoch:" + hashlib.sha256(username.encode()).hexdigest()[:32]


def account_epoch(username: str) -> str:
    """The account's current epoch ("0" until an operator first unlocks it)."""
    try:
        raw = store().get(_epoch_key(username))
    except StoreUnavailable as exc:
        _store_down(exc)
        return "0"
    return raw.decode() if raw else "0"


def login_throttles(username: str, ip: str, device_nonce: str | None = None) -> list[tuple[Throttle, str]]:
    """The throttles one sign-in attempt (or current-password check) of ``username`` goes through:
    its trusted browser's own (``login.device``) when it has one, else this account from this
    address (``login.pair``) and this account from everywhere (``login.account``); each identifier
    carries the account's epoch, so ``unlock_account`` forgets them all at once."""
    epoch = account_epoch(username)
    if device_nonce:
        return [(login_device(), f"{device_nonce}|{epoch}")]
    return [(login_pair(), f"{username}|{ip}|{epoch}"), (login_account(), f"{username}|{epoch}")]


def login_failures(username: str) -> tuple[int, int]:
    """(failed sign-ins of this account from everywhere still counted, seconds until the next
    attempt is let through) since the last unlock: what the console shows an operator."""
    count_key, gate_key = _keys(login_account(), f"{username}|{account_epoch(username)}")
    try:
        return int(store().get(count_key) or 0), store().ttl(gate_key) or 0
    except StoreUnavailable:
        return 0, 0


def unlock_account(username: str) -> None:
    """Forget every sign-in failure of this account (an operator's "unlock", issue 10 item 14):
    the next attempt from anywhere starts with the free allowance again."""
    lifetime = max(EPOCH_LIFETIME, 2 * settings().login_failure_window)
    store().incr(_epoch_key(username), lifetime, refresh=True)


# -- hard limits -------------------------------------------------------------------------------
def recover_ip() -> Limit:
    """Identifications by personal data (apply, forgot account/password, activate) that found
    nobody, per address: enough for a class sharing one address, too few to guess IDs."""
    s = settings()
    return Limit("recover.ip", s.recover_failures_per_ip, 3600)


def recover_id() -> Limit:
    """The same, per ID number: nobody can try many names and birthdays against one pupil's number."""
    s = settings()
    return Limit("recover.id", s.recover_failures_per_id, 3600)

def login_ip() -> Limit:
    """Failures from one address across every account: a ceiling against spraying many accounts,
    high enough that a whole school behind one address does not meet it by mistyping."""
    s = settings()
    return Limit("login.ip", s.login_failures_per_ip, s.login_failure_window)


def client_auth() -> Limit:
    """Failed client authentications per (client, address): a relying party's own server is never
    refused because someone elsewhere guesses its secret."""
    s = settings()
    return Limit("client.auth", s.client_auth_failures_per_address, s.login_failure_window)


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
