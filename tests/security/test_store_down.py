"""What the service does when Redis is unreachable (R-N3, DESIGN rule 7).

Each test builds an app whose Redis URL points at a closed port, so it runs on either backend:
the embedded suite exercises the same Redis code paths against a store that is down.
"""

from __future__ import annotations

import logging

import pytest

from idp import create_app
from idp.errors import ServiceUnavailable
from idp.security import ratelimit

DEAD_REDIS = "redis://127.0.0.1:1/0"


def _app(app_config: dict, policy: str):
    app = create_app({**app_config, "redis_url": DEAD_REDIS, "rate_limit_when_store_down": policy})
    app.config["WTF_CSRF_ENABLED"] = False
    return app


def test_login_page_fails_closed_with_a_clear_503(app_config) -> None:
    """R-N3: with Redis down and the default policy, a login attempt gets a 503 page, never a 500."""
    app = _app(app_config, "closed")
    with app.app_context():
        resp = app.test_client().post("/login", data={"username": "someone", "password": "whatever-1"})
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert "暫時無法使用" in resp.get_data(as_text=True)


@pytest.mark.parametrize("policy", ["closed", "open"])
def test_rate_limit_policy_when_store_is_down(app_config, policy, caplog) -> None:
    """R-N3: the configured policy decides: closed refuses, open lets the attempt through with a warning."""
    app = _app(app_config, policy)
    caplog.set_level(logging.WARNING, logger="idp.security.ratelimit")
    with app.test_request_context():
        if policy == "closed":
            with pytest.raises(ServiceUnavailable):
                ratelimit.check(ratelimit.login_account(), "someone")
        else:
            ratelimit.check(ratelimit.login_account(), "someone")
            assert ratelimit.count_failure(ratelimit.login_account(), "someone") is False
            assert any("failing open" in r.getMessage() for r in caplog.records)
