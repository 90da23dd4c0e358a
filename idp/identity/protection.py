"""Blind index and encryption of national IDs (R-S4).

Only this module and ``identity.nationalid`` ever see a clear number. The database keeps:

* a *blind index*: HMAC-SHA-256 under ``identity_index_key`` of the normalised number, hex. It is
  stable (same number → same index) so every source and every sign-in finds the same person,
  and keyed so a stolen table cannot be reversed by hashing the 10^9 possible numbers;
* a *ciphertext*: AES-256-GCM under the current key of ``identity_encryption_keys``, random
  96-bit nonce, stored as ``<key id>:<base64(nonce || ciphertext+tag)>``. The key id lets old rows
  be decrypted after the key rotates; ``reencrypt`` moves a row to the current key.

A person's account at their county's education network (縣市帳號, R-L2) is kept the same way as the
number's blind index, never in clear: ``county_account_index`` is an HMAC in a domain of its own (a
sub-key of the index key), so an account index can never equal, or be tried against, a number's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.identity.nationalid import NationalId

AAD = b"idp.identity.national_id.v1"
COUNTY_ACCOUNT_DOMAIN = b"idp.identity.county_account.v1"


class ProtectionError(RuntimeError):
    """A ciphertext cannot be decrypted (unknown key id, tampered data); never contains the number."""


@dataclass(frozen=True)
class Protector:
    """Keys for the blind index and the encryption; build it with ``from_settings`` or directly in tests."""

    index_key: bytes
    keys: dict[str, bytes]
    current_key_id: str

    def __post_init__(self) -> None:
        if len(self.index_key) < 32:
            raise ValueError("identity index key must be at least 32 bytes")
        if self.current_key_id not in self.keys:
            raise ValueError("current identity key id is not among the encryption keys")
        for kid, key in self.keys.items():
            if len(key) != 32 or ":" in kid:
                raise ValueError("identity encryption keys must be 32 bytes, key ids without ':'")

    def blind_index(self, nid: NationalId) -> str:
        return hmac.new(self.index_key, nid.reveal().encode("ascii"), hashlib.sha256).hexdigest()

    @cached_property
    def _county_account_key(self) -> bytes:
        return hmac.new(self.index_key, COUNTY_ACCOUNT_DOMAIN, hashlib.sha256).digest()

    def county_account_index(self, county_code: str, account: str) -> str:
        """The keyed hash a county account is stored and looked up by (R-L2): the same for
        ``NTPC0521``, ``ntpc0521`` and a full-width ``ｎｔｐｃ０５２１`` typed or exported by another
        tool, since a county's login treats them as one account."""
        message = f"{county_code.strip()}\0{normalise_county_account(account)}".encode()
        return hmac.new(self._county_account_key, message, hashlib.sha256).hexdigest()

    def encrypt(self, nid: NationalId) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.current_key_id]).encrypt(nonce, nid.reveal().encode("ascii"), AAD)
        return f"{self.current_key_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, ciphertext: str) -> NationalId:
        kid, _, body = ciphertext.partition(":")
        key = self.keys.get(kid)
        if key is None:
            raise ProtectionError("unknown identity key id")
        raw = base64.b64decode(body)
        try:
            clear = AESGCM(key).decrypt(raw[:12], raw[12:], AAD)
        except Exception as exc:  # InvalidTag: tampered or wrong key
            raise ProtectionError("identity ciphertext does not verify") from exc
        return NationalId.parse(clear.decode("ascii"))

    def key_id_of(self, ciphertext: str) -> str:
        return ciphertext.partition(":")[0]

    def reencrypt(self, ciphertext: str) -> str:
        """The same number under the current key (no-op when it already is)."""
        if self.key_id_of(ciphertext) == self.current_key_id:
            return ciphertext
        return self.encrypt(self.decrypt(ciphertext))


def normalise_county_account(account: str) -> str:
    """Width- and case-folded (NFKC, then casefold) and trimmed: the form an account is hashed in."""
    return unicodedata.normalize("NFKC", account).strip().casefold()


def parse_keys(text: str) -> dict[str, bytes]:
    """``"k1:BASE64,k2:BASE64"`` → {kid: 32-byte key}."""
    keys: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kid, _, b64 = part.partition(":")
        keys[kid.strip()] = base64.b64decode(b64.strip())
    return keys


def derive_key(secret: str) -> bytes:
    """A 32-byte key from a configured string: base64 of 32+ bytes, or else its SHA-256 (development)."""
    try:
        raw = base64.b64decode(secret, validate=True)
        if len(raw) >= 32:
            return raw
    except ValueError:
        pass
    return hashlib.sha256(secret.encode()).digest()


def protector() -> Protector:
    """The app's protector, built once from settings."""
    from flask import current_app

    cached = current_app.extensions.get("idp.identity.protector")
    if cached is None:
        from idp.extensions import settings

        s = settings()
        cached = Protector(derive_key(s.identity_index_key), parse_keys(s.identity_encryption_keys),
                           s.identity_current_key_id)
        current_app.extensions["idp.identity.protector"] = cached
    return cached


def blind_index(nid: NationalId) -> str:
    return protector().blind_index(nid)


def encrypt(nid: NationalId) -> str:
    return protector().encrypt(nid)


def county_account_index(county_code: str, account: str) -> str:
    """The keyed hash of a person's account at a county (``county_code``: the school directory's
    two-digit code, e.g. ``"01"`` for 新北市); the clear account goes no further than this."""
    return protector().county_account_index(county_code, account)


def decrypt(ciphertext: str) -> NationalId:
    return protector().decrypt(ciphertext)
