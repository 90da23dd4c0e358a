"""The login page's captcha as a person meets it: read the challenge on the page, type its answer."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from helpers import csrf_from

_CHALLENGE = re.compile(r'name="captcha-id" value="([^"]+)"')


def captcha_on(html: str) -> str | None:
    """The id of the captcha challenge shown on a page, or None when the page shows no captcha."""
    match = _CHALLENGE.search(html)
    return match.group(1) if match else None


def answer(challenge_id: str) -> str:
    """What a person reads in the picture (the store's answer, only in tests)."""
    from idp.security import captcha

    found = captcha.answer_for_tests(challenge_id)
    assert found, "the captcha is unknown, used or expired"
    return found


def login_with_captcha(client: FlaskClient, username: str, password: str, next_url: str = "/",
                       page: str = "/login?force=1", **extra: Any) -> Any:
    """Open the login page, which must show a captcha, and sign in typing its answer too."""
    html = client.get(page).get_data(as_text=True)
    challenge = captcha_on(html)
    assert challenge, "the login page shows no captcha"
    return client.post("/login", data={"username": username, "password": password, "next": next_url,
                                       "csrf_token": csrf_from(html), "captcha": answer(challenge),
                                       "captcha-id": challenge, **extra})
