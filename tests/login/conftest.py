"""Login fixtures: accounts made through the real service (its rules and audit), not a factory."""

from __future__ import annotations

import pytest
from helpers import PASSWORD

from idp.accounts.services import create_account
from idp.extensions import db


@pytest.fixture
def student(app):
    account = create_account("student1", PASSWORD, name="王小明", kind="cloud")
    db.session.commit()
    return account
