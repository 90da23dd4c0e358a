"""OIDC fixtures: clients and accounts made with the models, a signed-in browser, PKCE helpers."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from oidc_helpers import PUBLIC_REDIRECT, REDIRECT, SECRET

from idp.accounts.models import Account
from idp.extensions import db
from idp.oidc.models import Client


@pytest.fixture
def make_account(app):
    hasher = PasswordHasher(memory_cost=1024, time_cost=1)

    def make(username: str = "student1", kind: str = "cloud", **fields: Any) -> Account:
        account = Account(username=username, password_hash=hasher.hash("correct horse"), kind=kind,
                          name=fields.pop("name", "王小明"), email=fields.pop("email", f"{username}@example.edu.tw"),
                          email_verified=fields.pop("email_verified", True), **fields)
        db.session.add(account)
        db.session.commit()
        return account

    return make


@pytest.fixture
def account(make_account) -> Account:
    return make_account()


@pytest.fixture
def make_client(app):
    def make(client_id: str = "rp1", *, secret: str | None = SECRET, **fields: Any) -> Client:
        fields.setdefault("name", "教育市集 Demo RP")
        fields.setdefault("redirect_uris", [REDIRECT])
        fields.setdefault("grant_types", ["authorization_code", "refresh_token"])
        fields.setdefault("scope", "openid profile email phone")
        fields.setdefault("token_endpoint_auth_method", "client_secret_basic" if secret else "none")
        fields.setdefault("post_logout_redirect_uris", ["https://rp.example.org/bye"])
        client = Client(client_id=client_id, **fields)
        client.set_secret(secret)
        db.session.add(client)
        db.session.commit()
        return client

    return make


@pytest.fixture
def rp(make_client) -> Client:
    return make_client()


@pytest.fixture
def public_rp(make_client) -> Client:
    return make_client("spa1", secret=None, redirect_uris=[PUBLIC_REDIRECT], name="Public App")


@pytest.fixture
def link_person(app):
    """Make ``account`` a real-name account: a person known from a source, with affiliations, linked."""
    import datetime as dt

    import sqlalchemy as sa

    from idp.identity import protection
    from idp.identity.models import Person
    from idp.identity.nationalid import NationalId
    from idp.sources import resolver
    from idp.sources.base import AffiliationRecord, PersonRecord

    def link(account: Account, national_id: str, *affiliations: AffiliationRecord, name: str = "王小明",
             source: str = "county:ntpc") -> Person:
        nid = NationalId.parse(national_id)
        resolver.merge_batch(source, [PersonRecord(source, nid, name, dt.date(2015, 5, 21),
                                                   affiliations=tuple(affiliations))])
        person = resolver.person_by_index(protection.blind_index(nid))
        person.account_id = account.id
        db.session.commit()
        return db.session.scalar(sa.select(Person).where(Person.id == person.id))

    return link
