"""Signing keys in ``keys/`` and the JWKS built from them (R-O1; issue 2 item 4).

One JSON file per key: the private JWK plus ``kid``, ``alg``, ``status`` (active/retired),
``created_at`` and ``retired_at``, mode 0600. On first start an RS256 and an ES256 key are
made. ``keys rotate`` writes a new active key per algorithm and retires the previous one;
every process notices at its next use because the directory's mtime changed (one
``os.stat`` per use, no restart). A retired key still verifies: it stays in the JWKS until
``retired_at`` plus the longest lifetime of a token it signed, then drops out.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet, RSAKey

ALGORITHMS = ("RS256", "ES256")
ACTIVE = "active"
RETIRED = "retired"


class UnknownKey(LookupError):
    """No such key (CLI ``keys retire`` with an unknown kid)."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    status: str
    created_at: int
    retired_at: int | None
    key: Any  # joserfc RSAKey / ECKey with the private part

    def public_jwk(self) -> dict[str, Any]:
        data = self.key.as_dict(private=False)
        data.update(kid=self.kid, alg=self.alg, use="sig")
        return data


def _generate(alg: str) -> dict[str, Any]:
    now = int(time.time())
    kid = f"{time.strftime('%Y%m%d', time.gmtime(now))}-{alg.lower()}-{secrets.token_hex(4)}"
    if alg == "RS256":
        key = RSAKey.generate_key(2048, private=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", private=True)
    else:
        raise ValueError(f"unsupported algorithm {alg}")
    return {"kid": kid, "alg": alg, "status": ACTIVE, "created_at": now, "retired_at": None,
            "jwk": key.as_dict(private=True)}


class KeyStore:
    """The key directory of one app, re-read whenever the directory's mtime changes."""

    def __init__(self, directory: str | Path, retention: int) -> None:
        self.directory = Path(directory)
        self.retention = retention  # seconds a retired key stays published
        self._lock = threading.Lock()
        self._mtime: int | None = None
        self._settled = False
        self._keys: list[SigningKey] = []
        self._jwks_cache: tuple[list[SigningKey], int, bytes] | None = None

    # -- files -------------------------------------------------------------------------------
    def _write(self, record: dict[str, Any]) -> None:
        path = self.directory / f"{record['kid']}.json"
        tmp = self.directory / f".{record['kid']}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh)
        os.replace(tmp, path)  # a new directory entry: the directory's mtime changes

    def _records(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.directory.glob("*.json")):
            with path.open() as fh:
                out.append(json.load(fh))
        return out

    class _Locked:
        def __init__(self, directory: Path) -> None:
            self.path = directory / ".lock"

        def __enter__(self) -> None:
            self.fh = open(self.path, "a")
            fcntl.flock(self.fh, fcntl.LOCK_EX)

        def __exit__(self, *exc: object) -> None:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()

    def ensure(self) -> list[str]:
        """Create the directory and one active key per algorithm that has none; return new kids."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        created = []
        with self._Locked(self.directory):
            records = self._records()
            for alg in ALGORITHMS:
                if not any(r["alg"] == alg and r["status"] == ACTIVE for r in records):
                    record = _generate(alg)
                    self._write(record)
                    created.append(record["kid"])
        return created

    def rotate(self, algs: tuple[str, ...] = ALGORITHMS) -> list[tuple[str, str | None]]:
        """New active key per algorithm; the previous active one becomes retired.

        Returns ``(new_kid, retired_kid)`` pairs.
        """
        out = []
        with self._Locked(self.directory):
            records = self._records()
            now = int(time.time())
            for alg in algs:
                new = _generate(alg)
                self._write(new)
                old_kid = None
                for record in records:
                    if record["alg"] == alg and record["status"] == ACTIVE:
                        record.update(status=RETIRED, retired_at=now)
                        self._write(record)
                        old_kid = record["kid"]
                out.append((new["kid"], old_kid))
        return out

    def retire(self, kid: str) -> None:
        """Retire one key now. The last active key of an algorithm is replaced first (rotate)."""
        with self._Locked(self.directory):
            records = {r["kid"]: r for r in self._records()}
            record = records.get(kid)
            if record is None:
                raise UnknownKey(kid)
            if record["status"] == RETIRED:
                return
            record.update(status=RETIRED, retired_at=int(time.time()))
            self._write(record)
            if not any(r["alg"] == record["alg"] and r["status"] == ACTIVE for r in records.values()
                       if r["kid"] != kid):
                self._write(_generate(record["alg"]))

    # -- reading -----------------------------------------------------------------------------
    def _load(self) -> list[SigningKey]:
        mtime = os.stat(self.directory).st_mtime_ns
        if mtime == self._mtime and self._settled:
            return self._keys
        with self._lock:
            if mtime != self._mtime or not self._settled:
                keys = []
                for r in self._records():
                    jwk = {**r["jwk"], "kid": r["kid"], "alg": r["alg"], "use": "sig"}
                    imported = (RSAKey if r["alg"] == "RS256" else ECKey).import_key(jwk)
                    keys.append(SigningKey(r["kid"], r["alg"], r["status"], r["created_at"],
                                           r.get("retired_at"), imported))
                # Active first, the RS256 ID-token key before the others: the ministry's PHP sample (and
                # apps copied from it) verify with keys[0] of the JWKS, reading n and e (R-O4).
                keys.sort(key=lambda k: (k.status != ACTIVE, k.alg != "RS256", -k.created_at))
                self._keys = keys
                self._mtime = mtime
                # Directory timestamps can be coarse (a few ms): a change landing in the same tick
                # as our read would go unnoticed, so keep re-reading until the mtime is 2 s old.
                self._settled = time.time_ns() - mtime > 2_000_000_000
        return self._keys

    def all(self) -> list[SigningKey]:
        """Every key on disk, active first (RS256 before ES256), newest first."""
        return list(self._load())

    def signing_key(self, alg: str) -> SigningKey:
        """The newest active key for ``alg``: new tokens use it at once after a rotation."""
        for key in self._load():
            if key.alg == alg and key.status == ACTIVE:
                return key
        raise LookupError(f"no active {alg} signing key in {self.directory}")

    def published(self, now: int | None = None) -> list[SigningKey]:
        """Active keys plus retired ones still inside their retention window."""
        now = int(time.time()) if now is None else now
        return [k for k in self._load()
                if k.status == ACTIVE or (k.retired_at or 0) + self.retention > now]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.published()]}

    def jwks_json(self) -> bytes:
        """The JWKS document, cached until a rotation or the end of a retired key's window."""
        keys = self._load()
        now = int(time.time())
        cached = self._jwks_cache
        if cached is not None and cached[0] is keys and cached[1] > now:
            return cached[2]
        published = self.published(now)
        ends = [(k.retired_at or 0) + self.retention for k in published if k.status == RETIRED]
        body = json.dumps({"keys": [k.public_jwk() for k in published]}, separators=(",", ":")).encode()
        self._jwks_cache = (keys, min(ends) if ends else 2**62, body)
        return body

    def verification_keyset(self) -> KeySet:
        """Public keys that may have signed a token we still accept (``id_token_hint``)."""
        return KeySet([k.key for k in self._load()])
