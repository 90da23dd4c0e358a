"""OIDC fixtures: accounts and clients from the factories, real-name people through the sources."""

from __future__ import annotations

from typing import Any

import factories
import pytest
from factories import AccountFactory, ClientFactory
from oidc_helpers import PUBLIC_REDIRECT, SECRET

from idp.accounts.models import Account
from idp.extensions import db
from idp.oidc.models import Client


@pytest.fixture
def make_account(app):
    def make(username: str = "student1", kind: str = "cloud", **fields: Any) -> Account:
        return AccountFactory(username=username, kind=kind, **fields)

    return make


@pytest.fixture
def account(make_account) -> Account:
    return make_account()


@pytest.fixture
def make_client(app):
    def make(client_id: str = "rp1", *, secret: str | None = SECRET, **fields: Any) -> Client:
        return ClientFactory(client_id=client_id, secret=secret, **fields)

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
    from idp.identity import services as identity

    def link(account: Account, national_id: str, *affiliations: Any, name: str = "王小明",
             source: str = "county:ntpc") -> Any:
        person = factories.person(national_id, *affiliations, name=name, source=source)
        identity.link_account(person, account, actor="test")
        db.session.commit()
        return person

    return link
