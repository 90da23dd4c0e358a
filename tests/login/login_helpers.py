"""Helpers for driving the hosted login page through its form (a uniquely named module, so
several test directories can each have their own helpers without a ``conftest`` clash)."""

from __future__ import annotations

import re

PASSWORD = "Correct-Horse-9"


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token a browser would get from the page at ``path``."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client, username: str, password: str, next_url: str = "/", **extra):
    """Submit the login form as a person would."""
    token = csrf_token(client)
    return client.post("/login", data={"username": username, "password": password, "next": next_url,
                                       "csrf_token": token, **extra})
