"""Operator console fixtures: an operator and a plain person, made through the accounts service."""

from __future__ import annotations

import pytest
from admin_helpers import OPERATOR_PASSWORD

from idp.accounts.services import create_account
from idp.extensions import db


@pytest.fixture
def operator(app):
    account = create_account("operator1", OPERATOR_PASSWORD, name="維運人員", kind="member", is_operator=True)
    db.session.commit()
    return account


@pytest.fixture
def pupil(app):
    account = create_account("pupil1", OPERATOR_PASSWORD, name="王小明", kind="cloud")
    db.session.commit()
    return account


@pytest.fixture
def console(client, operator):
    """A browser signed in as the operator."""
    from admin_helpers import sign_in

    sign_in(client, "operator1")
    return client
