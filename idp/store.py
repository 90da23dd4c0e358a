"""The store for short-lived protocol state: codes, SSO sessions, one-time codes, rate counters.

Production uses Redis so that any app process can serve any request (R-N2); the embedded
default keeps the same interface in process memory. Every operation the protocol relies on
for correctness (redeeming a code exactly once, counting failures) is atomic in both.
Values are bytes or str; ``get_json``/``set_json`` are the usual way in.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Protocol

import redis


class StoreUnavailable(RuntimeError):
    """The store cannot be reached; callers decide whether to fail open or closed."""


class Store(Protocol):
    """What the service needs from a key-value store with expiry."""

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes | str, ttl: int) -> None: ...
    def set_many(self, items: list[tuple[str, bytes | str, int]]) -> None: ...
    def add(self, key: str, value: bytes | str, ttl: int) -> bool: ...
    def getdel(self, key: str) -> bytes | None: ...
    def delete(self, *keys: str) -> int: ...
    def incr(self, key: str, ttl: int, amount: int = 1, *, refresh: bool = False) -> int: ...
    def ttl(self, key: str) -> int | None: ...
    def sadd(self, key: str, member: str, ttl: int) -> None: ...
    def smembers(self, key: str) -> set[str]: ...
    def ping(self) -> bool: ...


class _JsonMixin:
    def get_json(self, key: str) -> Any:
        raw = self.get(key)  # type: ignore[attr-defined]
        return None if raw is None else json.loads(raw)

    def set_json(self, key: str, value: Any, ttl: int) -> None:
        self.set(key, json.dumps(value, separators=(",", ":")), ttl)  # type: ignore[attr-defined]

    def getdel_json(self, key: str) -> Any:
        raw = self.getdel(key)  # type: ignore[attr-defined]
        return None if raw is None else json.loads(raw)


def _b(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


class MemoryStore(_JsonMixin):
    """In-process store for the embedded default and unit tests: one process only."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._data: dict[str, tuple[Any, float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> Any:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires <= time.monotonic():
            del self._data[key]
            return None
        return value

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._live(self.prefix + key)
            return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes | str, ttl: int) -> None:
        with self._lock:
            self._data[self.prefix + key] = (_b(value), time.monotonic() + ttl)


    def set_many(self, items: list[tuple[str, bytes | str, int]]) -> None:
        for key, value, ttl in items:
            self.set(key, value, ttl)
    def add(self, key: str, value: bytes | str, ttl: int) -> bool:
        with self._lock:
            if self._live(self.prefix + key) is not None:
                return False
            self._data[self.prefix + key] = (_b(value), time.monotonic() + ttl)
            return True

    def getdel(self, key: str) -> bytes | None:
        with self._lock:
            value = self._live(self.prefix + key)
            self._data.pop(self.prefix + key, None)
            return value if isinstance(value, bytes) else None

    def delete(self, *keys: str) -> int:
        with self._lock:
            return sum(1 for k in keys if self._data.pop(self.prefix + k, None) is not None)

    def incr(self, key: str, ttl: int, amount: int = 1, *, refresh: bool = False) -> int:
        with self._lock:
            full = self.prefix + key
            current = self._live(full)
            count = (int(current) if current is not None else 0) + amount
            expires = time.monotonic() + ttl if current is None or refresh else self._data[full][1]
            self._data[full] = (str(count).encode(), expires)
            return count

    def ttl(self, key: str) -> int | None:
        with self._lock:
            full = self.prefix + key
            if self._live(full) is None:
                return None
            return max(0, int(self._data[full][1] - time.monotonic()))

    def sadd(self, key: str, member: str, ttl: int) -> None:
        with self._lock:
            full = self.prefix + key
            current = self._live(full)
            members = set(current) if isinstance(current, frozenset) else set()
            members.add(member)
            self._data[full] = (frozenset(members), time.monotonic() + ttl)

    def smembers(self, key: str) -> set[str]:
        with self._lock:
            current = self._live(self.prefix + key)
            return set(current) if isinstance(current, frozenset) else set()

    def ping(self) -> bool:
        return True

    def flush(self) -> None:
        with self._lock:
            self._data.clear()


class RedisStore(_JsonMixin):
    """Redis-backed store shared by every app process (production, and the test suite)."""

    def __init__(self, url: str, prefix: str = "") -> None:
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except redis.RedisError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def get(self, key: str) -> bytes | None:
        return self._call(self.client.get, self.prefix + key)

    def set(self, key: str, value: bytes | str, ttl: int) -> None:
        self._call(lambda: self.client.set(self.prefix + key, value, ex=ttl))

    def set_many(self, items: list[tuple[str, bytes | str, int]]) -> None:
        """Several keys in one round trip (a MULTI block: all or none)."""
        def run() -> None:
            pipe = self.client.pipeline()
            for key, value, ttl in items:
                pipe.set(self.prefix + key, value, ex=ttl)
            pipe.execute()

        self._call(run)

    def add(self, key: str, value: bytes | str, ttl: int) -> bool:
        return bool(self._call(lambda: self.client.set(self.prefix + key, value, ex=ttl, nx=True)))

    def getdel(self, key: str) -> bytes | None:
        return self._call(self.client.getdel, self.prefix + key)

    def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(self._call(self.client.delete, *[self.prefix + k for k in keys]))

    def incr(self, key: str, ttl: int, amount: int = 1, *, refresh: bool = False) -> int:
        """Add ``amount`` atomically; the key expires ``ttl`` seconds after it was created, or
        after this call with ``refresh`` (a count that lives as long as it keeps moving)."""
        def run() -> int:
            pipe = self.client.pipeline()
            pipe.incrby(self.prefix + key, amount)
            pipe.expire(self.prefix + key, ttl, nx=not refresh)
            return int(pipe.execute()[0])

        return self._call(run)

    def ttl(self, key: str) -> int | None:
        value = self._call(self.client.ttl, self.prefix + key)
        return None if value is None or value < 0 else int(value)

    def sadd(self, key: str, member: str, ttl: int) -> None:
        def run() -> None:
            pipe = self.client.pipeline()
            pipe.sadd(self.prefix + key, member)
            pipe.expire(self.prefix + key, ttl)
            pipe.execute()

        self._call(run)

    def smembers(self, key: str) -> set[str]:
        return {m.decode() for m in self._call(self.client.smembers, self.prefix + key)}

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def flush(self) -> None:
        """Delete this store's keys only (tests); never FLUSHDB a shared Redis."""
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            self.client.delete(*keys[i : i + 500])


def make_store(url: str, prefix: str) -> MemoryStore | RedisStore:
    return RedisStore(url, prefix) if url else MemoryStore(prefix)
