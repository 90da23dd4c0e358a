"""What a person's browser does, for every test directory: read a form's CSRF token, post a form,
sign in through the login page, or be given a session directly (as a finished sign-in leaves it).

One module (``tests/`` is on the path through the top-level conftest), instead of a copy per
directory.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from flask.testing import FlaskClient

PASSWORD = "Correct-Horse-9"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token of the (first) form on a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token a browser would get from the page at ``path``."""
    return csrf_from(client.get(path).get_data(as_text=True))


def post_form(client: FlaskClient, path: str, data: dict[str, Any], page: str | None = None) -> Any:
    """GET the page (for its CSRF token) then POST the form as a browser would."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page or path)})


def login(client: FlaskClient, username: str, password: str = PASSWORD, next_url: str = "/", **extra: Any) -> Any:
    """Submit the login form as a person would (the response, not followed)."""
    return client.post("/login", data={"username": username, "password": password, "next": next_url,
                                       "csrf_token": csrf_token(client, "/login?force=1"), **extra})


def sign_in(browser: FlaskClient, account: Any, auth_time: int | None = None) -> str:
    """Give the browser an SSO session for ``account``, at the level its sign-in would reach, without
    going through the login page; return the session id (the cookie's value)."""
    from flask import current_app

    from idp.identity import assurance
    from idp.login import sessions

    sso = sessions.create(account.id, auth_time, acr=assurance.acr_for(account))
    browser.set_cookie(current_app.extensions["idp.settings"].sso_cookie, sso.sid, domain="localhost")
    return sso.sid


@contextlib.contextmanager
def sql_statements() -> Iterator[list[str]]:
    """The SQL the app's engine sends while the block runs, whitespace folded (statement-count tests)."""
    from sqlalchemy import event

    from idp.extensions import db

    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)
