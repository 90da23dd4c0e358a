"""Registration rules shared by the console and the CLI (R-O3, issue 2 item 9).

The services flush; like the console and the CLI, each test commits before a request uses the result."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from joserfc.jwk import RSAKey
from oidc_helpers import basic

from idp.extensions import db
from idp.oidc import registration as services
from idp.oidc.models import Client, Consent, Token
from idp.security.models import AuditEvent

WEB_APP = {"name": "School App", "redirect_uris": ["https://app.example.edu.tw/callback"],
           "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
           "scope": "openid profile"}


def client_credentials(client, client_id: str, secret: str):
    return client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret))


def _events(name: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == name)))


def test_create_gives_the_secret_once_and_stores_a_hash(app, client) -> None:
    """R-O3: a confidential app gets a 256-bit secret in clear only at creation; the row keeps a hash."""
    reg = services.create_client(WEB_APP, "op1")
    db.session.commit()
    assert reg.secret and len(reg.secret) >= 43
    row = db.session.scalar(sa.select(Client).where(Client.client_id == reg.client.client_id))
    assert reg.secret not in (row.client_secret_hash or "")
    described = json.dumps(services.describe(row))
    assert reg.secret not in described and "client_secret_hash" not in described
    audit_rows = _events("client.created")
    assert len(audit_rows) == 1 and audit_rows[0].actor == "op1"
    assert reg.secret not in json.dumps(audit_rows[0].data)
    assert client_credentials(client, reg.client.client_id, reg.secret).status_code == 200


@pytest.mark.parametrize(("change", "field"), [
    ({"redirect_uris": ["http://app.example.edu.tw/cb"]}, "redirect_uris"),  # http off loopback
    ({"redirect_uris": ["https://app.example.edu.tw/cb#frag"]}, "redirect_uris"),
    ({"redirect_uris": ["https://*.example.edu.tw/cb"]}, "redirect_uris"),
    ({"redirect_uris": ["/callback"]}, "redirect_uris"),
    ({"redirect_uris": ["javascript:alert(1)"]}, "redirect_uris"),
    ({"redirect_uris": ["https://user:pw@app.example.edu.tw/cb"]}, "redirect_uris"),
    ({"redirect_uris": []}, "redirect_uris"),
    ({"post_logout_redirect_uris": ["http://evil.example/"]}, "post_logout_redirect_uris"),
    ({"backchannel_logout_uri": "ftp://app.example.edu.tw/bc"}, "backchannel_logout_uri"),
    ({"scope": "openid admin"}, "scope"),
    ({"scope": "profile"}, "scope"),
    ({"grant_types": ["password"]}, "grant_types"),
    ({"grant_types": ["implicit"]}, "grant_types"),
    ({"grant_types": ["refresh_token"]}, "grant_types"),
    ({"grant_types": []}, "grant_types"),
    ({"token_endpoint_auth_method": "none"}, "grant_types"),  # public + client_credentials
    ({"token_endpoint_auth_method": "private_key_jwt"}, "jwks"),
    ({"token_endpoint_auth_method": "client_secret_jwt"}, "token_endpoint_auth_method"),
    ({"id_token_signed_response_alg": "HS256"}, "id_token_signed_response_alg"),
    ({"id_token_signed_response_alg": "none"}, "id_token_signed_response_alg"),
    ({"subject_type": "random"}, "subject_type"),
    ({"name": "  "}, "name"),
    ({"name": "School\x00App"}, "name"),
    ({"jwks": "{not json"}, "jwks"),
    ({"jwks": {"keys": [{"kty": "RSA", "n": "x"}]}}, "jwks"),
])
def test_bad_registrations_are_refused_with_the_field_to_fix(app, change, field) -> None:
    """R-O3: every broken rule names its field, and nothing is stored."""
    with pytest.raises(services.InvalidRegistration) as err:
        services.create_client({**WEB_APP, **change}, "op1")
    assert err.value.field == field and err.value.status == 400
    assert str(err.value.message)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == 0


@pytest.mark.parametrize("uri", ["http://127.0.0.1:8080/cb", "http://localhost/cb", "http://[::1]:9000/cb",
                                 "https://app.example.edu.tw/cb?tenant=1"])
def test_loopback_http_and_exact_https_uris_are_accepted(app, uri) -> None:
    """R-O3: plain http only to this machine (RFC 8252 §7.3); query strings are part of the exact URI."""
    reg = services.create_client({**WEB_APP, "redirect_uris": [uri]}, "op1")
    assert reg.client.redirect_uris == [uri]


def test_private_key_jwt_takes_public_keys_only(app) -> None:
    """R-O3: private_key_jwt needs the app's public keys; a private key pasted by mistake is refused."""
    key = RSAKey.generate_key(2048)
    with pytest.raises(services.InvalidRegistration) as err:
        services.create_client({**WEB_APP, "token_endpoint_auth_method": "private_key_jwt",
                                "jwks": {"keys": [key.as_dict(private=True)]}}, "op1")
    assert err.value.field == "jwks" and "私密金鑰" in str(err.value.message)  # "a private key"
    reg = services.create_client({**WEB_APP, "token_endpoint_auth_method": "private_key_jwt",
                                  "jwks": json.dumps({"keys": [key.as_dict(private=False)]})}, "op1")
    assert reg.secret is None and reg.client.client_secret_hash is None
    assert "d" not in reg.client.jwks["keys"][0]


def test_chosen_client_id_must_be_free_and_well_formed(app) -> None:
    """R-O3: an operator may pick the client ID (e.g. the ministry's), but not a taken or odd one."""
    services.create_client(WEB_APP, "op1", client_id="school-app")
    for taken_or_odd in ("school-app", "has space", "x"):
        with pytest.raises(services.InvalidRegistration) as err:
            services.create_client(WEB_APP, "op1", client_id=taken_or_odd)
        assert err.value.field == "client_id"


def test_update_changes_only_given_fields_and_moves_the_secret_with_the_method(app, client) -> None:
    """R-O3: switching to a public client drops the secret; switching back makes a new one, shown once."""
    reg = services.create_client(WEB_APP, "op1")
    cid = reg.client.client_id
    with pytest.raises(services.InvalidRegistration):
        services.update_client(cid, {"token_endpoint_auth_method": "none"}, "op1")  # still client_credentials
    updated = services.update_client(cid, {"token_endpoint_auth_method": "none",
                                           "grant_types": ["authorization_code"]}, "op1")
    assert updated.secret is None and updated.client.client_secret_hash is None
    assert updated.client.name == "School App" and updated.client.scope == "openid profile"
    back = services.update_client(cid, {"token_endpoint_auth_method": "client_secret_post",
                                        "grant_types": ["authorization_code", "client_credentials"]}, "op1")
    assert back.secret and back.secret != reg.secret
    resp = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": cid,
                                             "client_secret": back.secret})
    assert resp.status_code == 200
    changed = [e.data["changed"] for e in _events("client.updated")]
    assert ["grant_types", "token_endpoint_auth_method"] in changed


def test_rotated_secret_replaces_the_old_one_at_once(app, client) -> None:
    """R-O3: after a rotation the old secret fails and the new one works, with no restart."""
    reg = services.create_client(WEB_APP, "op1")
    db.session.commit()
    cid = reg.client.client_id
    assert client_credentials(client, cid, reg.secret).status_code == 200  # the client is now cached
    new = services.rotate_secret(cid, "op1").secret
    db.session.commit()
    assert client_credentials(client, cid, reg.secret).status_code == 401
    assert client_credentials(client, cid, new).status_code == 200
    assert len(_events("client.secret_rotated")) == 1


def test_delete_revokes_tokens_and_forgets_consents(app, client, account) -> None:
    """R-O3: a deleted app's tokens stop working at once and the consents given to it are gone."""
    reg = services.create_client(WEB_APP, "op1")
    db.session.commit()
    cid = reg.client.client_id
    assert client_credentials(client, cid, reg.secret).status_code == 200
    db.session.add(Consent(account_id=account.id, client_id=cid, scope="openid profile"))
    db.session.commit()
    counts = services.delete_client(cid, "op1")
    db.session.commit()
    assert counts == {"tokens_revoked": 1, "consents_removed": 1}
    assert db.session.scalar(sa.select(Token.access_revoked).where(Token.client_id == cid)) is True
    assert client_credentials(client, cid, reg.secret).status_code == 401
    with pytest.raises(services.NotFound):
        services.get_client(cid)
    assert _events("client.deleted")[0].data == counts
