"""Login fixtures: accounts made through the real service."""

from __future__ import annotations

import pytest

from idp.accounts.services import create_account
from idp.extensions import db

PASSWORD = "Correct-Horse-9"


@pytest.fixture
def student(app):
    account = create_account("student1", PASSWORD, name="王小明", kind="cloud")
    db.session.commit()
    return account


def csrf_token(client, path: str = "/login") -> str:
    import re

    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client, username: str, password: str, next_url: str = "/", **extra):
    token = csrf_token(client)
    return client.post("/login", data={"username": username, "password": password, "next": next_url,
                                       "csrf_token": token, **extra})
