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
    def add(self, key: str, value: bytes | str, ttl: int) -> bool: ...
    def getdel(self, key: str) -> bytes | None: ...
    def delete(self, *keys: str) -> int: ...
    def incr(self, key: str, ttl: int, amount: int = 1, *, refresh: bool = False) -> int: ...
    def ttl(self, key: str) -> int | None: ...
    def sadd(self, key: str, member: str, ttl: int) -> None: ...
    def smembers(self, key: str) -> set[str]: ...
    def ping(self) -> bool: ...
    def publish(self, channel: str, message: str) -> None: ...
    def listen(self, channel: str, callback: Any) -> Watcher: ...
    def batch(self) -> Batch: ...


class Watcher(Protocol):
    """A subscription to a channel; ``healthy`` is False while messages may be missed (not yet
    subscribed, or reconnecting): a reader must not rely on it then."""

    @property
    def healthy(self) -> bool: ...


class Batch:
    """Several store operations sent together: one round trip to Redis instead of one each.

    Each trip costs far more CPU than the command itself (two system calls on each side), and a
    sign-in or an authorization used to make a dozen or more. Queue operations (same meaning as the
    store's methods of the same name), then ``execute()`` returns their results in order. On Redis
    a batch that writes is one MULTI block, so its writes land together (one of reads only is a
    plain pipeline); in memory the operations run one after the other, each atomic as the store's
    own methods are.
    """

    def __init__(self, store: Any) -> None:
        self._store = store
        self._ops: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _add(self, name: str, *args: Any, **kwargs: Any) -> Batch:
        self._ops.append((name, args, kwargs))
        return self

    def get(self, key: str) -> Batch:
        return self._add("get", key)

    def getdel(self, key: str) -> Batch:
        return self._add("getdel", key)

    def ttl(self, key: str) -> Batch:
        return self._add("ttl", key)

    def set(self, key: str, value: bytes | str, ttl: int) -> Batch:
        return self._add("set", key, value, ttl)

    def set_json(self, key: str, value: Any, ttl: int) -> Batch:
        return self._add("set", key, json.dumps(value, separators=(",", ":")), ttl)

    def sadd(self, key: str, member: str, ttl: int) -> Batch:
        return self._add("sadd", key, member, ttl)

    def incr(self, key: str, ttl: int, amount: int = 1, *, refresh: bool = False) -> Batch:
        return self._add("incr", key, ttl, amount, refresh=refresh)

    def delete(self, *keys: str) -> Batch:
        return self._add("delete", *keys)

    def execute(self) -> list[Any]:
        ops, self._ops = self._ops, []
        return [getattr(self._store, name)(*args, **kwargs) for name, args, kwargs in ops]


class _RedisBatch(Batch):
    def execute(self) -> list[Any]:
        ops, self._ops = self._ops, []
        if not ops:
            return []
        prefix, client = self._store.prefix, self._store.client

        # Reads alone need no MULTI block (it costs two more commands and their answers); any write
        # keeps it: an INCR and its EXPIRE must land together, or a counter could outlive its window.
        writes = any(name not in ("get", "ttl") for name, _, _ in ops)

        def run() -> list[Any]:
            pipe = client.pipeline(transaction=writes)
            shapes: list[str] = []
            for name, args, kwargs in ops:
                if name == "get":
                    pipe.get(prefix + args[0])
                elif name == "getdel":
                    pipe.getdel(prefix + args[0])
                elif name == "ttl":
                    pipe.ttl(prefix + args[0])
                elif name == "set":
                    pipe.set(prefix + args[0], args[1], ex=args[2])
                elif name == "sadd":
                    pipe.sadd(prefix + args[0], args[1])
                    pipe.expire(prefix + args[0], args[2])
                elif name == "incr":
                    pipe.incrby(prefix + args[0], args[2])
                    pipe.expire(prefix + args[0], args[1], nx=not kwargs.get("refresh"))
                elif name == "delete":
                    pipe.delete(*[prefix + k for k in args])
                shapes.append(name)
            raw = iter(pipe.execute())
            results: list[Any] = []
            for name in shapes:
                value = next(raw)
                if name in ("sadd", "incr"):
                    next(raw)  # the EXPIRE's answer
                if name == "ttl":
                    value = None if value is None or value < 0 else int(value)
                elif name == "incr" or name == "delete":
                    value = int(value)
                elif name in ("set", "sadd"):
                    value = None
                results.append(value)
            return results

        return self._store._call(run)


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
        self._listeners: dict[str, list[Any]] = {}

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

    def publish(self, channel: str, message: str) -> None:
        """One process only: the listeners are called at once, in this thread."""
        for callback in list(self._listeners.get(channel, ())):
            callback(message)

    def listen(self, channel: str, callback: Any) -> Watcher:
        self._listeners.setdefault(channel, []).append(callback)
        return _AlwaysHealthy()

    def batch(self) -> Batch:
        return Batch(self)

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

    def publish(self, channel: str, message: str) -> None:
        self._call(self.client.publish, self.prefix + channel, message)

    def batch(self) -> Batch:
        return _RedisBatch(self)

    def listen(self, channel: str, callback: Any) -> Watcher:
        """Call ``callback(message)`` for each message on ``channel`` from a daemon thread of this
        process (start it after a fork, in the process that will use it)."""
        return _RedisWatcher(self.client, self.prefix + channel, callback)

    def flush(self) -> None:
        """Delete this store's keys only (tests); never FLUSHDB a shared Redis."""
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            self.client.delete(*keys[i : i + 500])


class _AlwaysHealthy:
    healthy = True


class _RedisWatcher:
    """A Redis subscription kept alive by a daemon thread. ``healthy`` only once subscribed; any
    error makes it unhealthy until it has subscribed again (with a growing pause), and every
    (re)subscription calls the callback once with an empty message, since messages published while
    it was away are lost: the reader must assume it missed something."""

    def __init__(self, client: redis.Redis, channel: str, callback: Any) -> None:
        self._client, self._channel, self._callback = client, channel, callback
        self._healthy = False
        self._thread = threading.Thread(target=self._run, name=f"watch:{channel}", daemon=True)
        self._thread.start()

    @property
    def healthy(self) -> bool:
        return self._healthy and self._thread.is_alive()

    def _run(self) -> None:
        pause = 0.5
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self._channel)
                pubsub.get_message(timeout=1.0)  # the server's confirmation (not passed on)
                self._healthy, pause = True, 0.5
                self._callback("")  # whatever was published before now may have been missed
                while True:
                    message = pubsub.get_message(timeout=5.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        self._callback(data.decode() if isinstance(data, bytes) else str(data))
            except Exception:  # connection lost, Redis restarting: resubscribe after a pause
                self._healthy = False
                time.sleep(pause)
                pause = min(pause * 2, 30.0)
            finally:
                try:
                    pubsub.close()
                except Exception:
                    self._healthy = False


def make_store(url: str, prefix: str) -> MemoryStore | RedisStore:
    return RedisStore(url, prefix) if url else MemoryStore(prefix)
