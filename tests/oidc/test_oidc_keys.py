"""Signing keys: created on first start, rotated without restart, retired keys published for a while (R-O1)."""

from __future__ import annotations

import json
import stat
import time

from joserfc import jwt
from joserfc.jwk import KeySet
from oidc_helpers import get_code, redeem, sign_in

from idp.extensions import db
from idp.oidc.keys import KeyStore
from idp.security.models import AuditEvent


def test_first_start_creates_rs256_and_es256_keys_mode_0600(tmp_path) -> None:
    """R-O1: an empty keys directory gets one RS256 and one ES256 key, private files mode 0600."""
    store = KeyStore(tmp_path / "keys", retention=3600)
    created = store.ensure()
    assert len(created) == 2
    assert store.ensure() == []
    files = list((tmp_path / "keys").glob("*.json"))
    assert len(files) == 2
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        record = json.loads(f.read_text())
        assert {"kid", "alg", "status", "created_at", "retired_at", "jwk"} <= set(record)
        assert record["status"] == "active" and "d" in record["jwk"]
    assert {k.alg for k in store.all()} == {"RS256", "ES256"}


def test_other_process_notices_rotation_and_retired_keys_drop_out(tmp_path) -> None:
    """R-O1: a second reader sees a rotation without restart; a retired key leaves the JWKS after its window."""
    one = KeyStore(tmp_path, retention=3600)
    one.ensure()
    other = KeyStore(tmp_path, retention=3600)
    before = other.signing_key("RS256").kid
    [(new_rs, old_rs), _] = one.rotate()
    assert old_rs == before
    assert other.signing_key("RS256").kid == new_rs
    published = {k.kid for k in other.published()}
    assert {before, new_rs} <= published
    later = {k.kid for k in other.published(now=int(time.time()) + 3601)}
    assert before not in later and new_rs in later
    one.retire(new_rs)  # the last active RS256 key: a fresh one replaces it
    assert other.signing_key("RS256").kid not in {before, new_rs}


def test_keys_rotate_changes_kid_and_old_tokens_still_verify(app, client, rp, account) -> None:
    """R-O1: `keys rotate` makes new ID tokens use a new kid while tokens signed before still validate."""
    sign_in(client, account)
    old = redeem(client, rp, get_code(client, rp)).get_json()["id_token"]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    new = redeem(client, rp, get_code(client, rp)).get_json()["id_token"]
    jwks = KeySet.import_key_set(client.get("/oauth/jwks").get_json())
    old_token = jwt.decode(old, jwks, algorithms=["RS256"])
    new_token = jwt.decode(new, jwks, algorithms=["RS256"])
    assert old_token.header["kid"] != new_token.header["kid"]
    listing = runner.invoke(args=["keys", "list", "--json"])
    rows = {r["kid"]: r for r in json.loads(listing.output)}
    assert rows[old_token.header["kid"]]["status"] == "retired" and rows[old_token.header["kid"]]["published"]
    assert rows[new_token.header["kid"]]["status"] == "active"
    assert db.session.execute(db.select(AuditEvent).filter_by(event="key.rotated")).scalars().first()
    result = runner.invoke(args=["keys", "retire", "no-such-kid"])
    assert result.exit_code != 0
    result = runner.invoke(args=["keys", "retire", new_token.header["kid"]])
    assert result.exit_code == 0
    assert db.session.execute(db.select(AuditEvent).filter_by(event="key.retired")).scalars().first()
