"""Factories for the rows tests need (factory_boy), made in the test's own session.

Accounts get a cheap argon2 hash of ``helpers.PASSWORD`` (computed once); traits: ``cloud``,
``operator``. Persons come only through the sources' merge (``person``), as in production: a test
never writes identity tables by hand.
"""

from __future__ import annotations

import datetime as dt
import functools

import factory
from argon2 import PasswordHasher
from helpers import PASSWORD

from idp.accounts.models import Account
from idp.extensions import db
from idp.oidc.models import Client, hash_secret

CLIENT_SECRET = "rp-secret-" + "x" * 30


@functools.cache
def _password_hash() -> str:
    return PasswordHasher(memory_cost=1024, time_cost=1).hash(PASSWORD)


class _Base(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731 - the per-test session, swapped by conftest
        sqlalchemy_session_persistence = "commit"


class AccountFactory(_Base):
    class Meta:
        model = Account

    username = factory.Sequence(lambda n: f"user{n:03d}")
    password_hash = factory.LazyFunction(_password_hash)
    name = "王小明"
    email = factory.LazyAttribute(lambda a: f"{a.username}@example.edu.tw")
    email_verified = True
    kind = "member"

    class Params:
        cloud = factory.Trait(kind="cloud")
        operator = factory.Trait(is_operator=True, name="維運人員")


class ClientFactory(_Base):
    """A confidential app with the secret ``CLIENT_SECRET`` (``secret=None`` for a public app)."""

    class Meta:
        model = Client

    class Params:
        secret = CLIENT_SECRET

    client_id = factory.Sequence(lambda n: f"rp{n}")
    client_secret_hash = factory.LazyAttribute(lambda c: hash_secret(c.secret) if c.secret else None)
    name = "教育市集 Demo RP"
    redirect_uris = factory.LazyFunction(lambda: ["https://rp.example.org/callback"])
    post_logout_redirect_uris = factory.LazyFunction(lambda: ["https://rp.example.org/bye"])
    grant_types = factory.LazyFunction(lambda: ["authorization_code", "refresh_token"])
    scope = "openid profile email phone"
    token_endpoint_auth_method = factory.LazyAttribute(lambda c: "client_secret_basic" if c.secret else "none")


def person(national_id: str, *affiliations: object, name: str = "王小明",
           birth_date: dt.date | None = dt.date(2015, 5, 21), birth_month_day: str | None = None,
           source: str = "county:ntpc") -> object:
    """A person as a trusted source reports them (through the resolver, like a sync), flushed."""
    from idp.identity import services as identity
    from idp.identity.nationalid import NationalId
    from idp.sources import resolver
    from idp.sources.base import PersonRecord

    nid = NationalId.parse(national_id)
    resolver.merge_batch(source, [PersonRecord(source, nid, name, birth_date, birth_month_day=birth_month_day,
                                               affiliations=tuple(affiliations))])
    return identity.person_by_index(identity.index_of(national_id))
