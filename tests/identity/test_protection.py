"""Blind index and encryption of national IDs, and the academic-term rule (issue 3 items 2, 3)."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os

import pytest
from flask import Flask

from idp.identity import protection
from idp.identity.models import academic_term
from idp.identity.nationalid import NationalId
from idp.identity.protection import ProtectionError, Protector

A = NationalId.parse("A123456789")
B = NationalId.parse("AC03095424")


def _p(current: str = "k1", **keys: bytes) -> Protector:
    return Protector(b"i" * 32, keys or {"k1": b"1" * 32}, current)


def test_blind_index_is_stable_and_keyed() -> None:
    """R-S4: same number → same index; another key or number → another index; no clear digits in it."""
    p = _p()
    assert p.blind_index(A) == p.blind_index(NationalId.parse("a123456789"))
    assert p.blind_index(A) != p.blind_index(B)
    assert Protector(b"j" * 32, {"k1": b"1" * 32}, "k1").blind_index(A) != p.blind_index(A)
    assert len(p.blind_index(A)) == 64 and "123456789" not in p.blind_index(A)


def test_ciphertext_round_trip_random_nonce() -> None:
    """R-S4: encryption is authenticated, randomised, and carries its key id."""
    p = _p()
    c1, c2 = p.encrypt(A), p.encrypt(A)
    assert c1 != c2 and c1.startswith("k1:") and "A123456789" not in c1
    assert p.decrypt(c1) == A
    tampered = c1[:-4] + ("AAAA" if not c1.endswith("AAAA") else "BBBB")
    with pytest.raises(ProtectionError):
        p.decrypt(tampered)


def test_key_rotation() -> None:
    """R-S4: after rotation old rows still decrypt and re-encrypt under the new key."""
    old = _p("k1", k1=b"1" * 32)
    c = old.encrypt(A)
    new = _p("k2", k1=b"1" * 32, k2=b"2" * 32)
    assert new.decrypt(c) == A
    moved = new.reencrypt(c)
    assert moved.startswith("k2:") and new.decrypt(moved) == A
    with pytest.raises(ProtectionError):
        _p("k2", k2=b"2" * 32).decrypt(c)


def test_app_protector_from_settings(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """R-S4: the app's configured keys work and nothing logged holds the clear number."""
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        bi = protection.blind_index(A)
        assert protection.decrypt(protection.encrypt(A)) == A
        logging.getLogger("test").info("looked up %s %r", A, A)
    assert bi
    assert "A123456789" not in caplog.text


def test_production_refuses_default_identity_keys() -> None:
    """R-S4: production will not start with the default index or encryption keys."""
    from idp.config import ConfigError, load_settings

    good = {"IDP_CONFIG": "testing", "env": "production", "secret_key": "s" * 40, "subject_secret": "t" * 40,
            "issuer": "https://idp.example.edu.tw", "redis_url": "redis://x", "database_url": "postgresql://x/y",
            "identity_index_key": "insecure-default-identity-index-key-change-me"}
    with pytest.raises(ConfigError, match="IDENTITY_INDEX_KEY"):
        load_settings(good, environ={})
    key = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(ConfigError, match="IDENTITY_ENCRYPTION_KEYS"):
        load_settings({**good, "identity_index_key": key}, environ={})
    s = load_settings({**good, "identity_index_key": key, "identity_encryption_keys": f"k9:{key}",
                       "identity_current_key_id": "k9"}, environ={})
    assert s.public()["identity_encryption_keys"] == "***"


@pytest.mark.parametrize(("day", "term"), [
    (dt.date(2025, 8, 1), (114, 1)), (dt.date(2026, 1, 31), (114, 1)), (dt.date(2026, 2, 1), (114, 2)),
    (dt.date(2026, 7, 31), (114, 2)), (dt.date(2025, 7, 31), (113, 2)),
])
def test_academic_term(day: dt.date, term: tuple[int, int]) -> None:
    """R-S2: the school year runs 1 Aug – 31 Jul; semester 1 is Aug–Jan, 2 is Feb–Jul (ROC year)."""
    assert academic_term(day) == term
