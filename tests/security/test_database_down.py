"""What the service does when PostgreSQL is unreachable (R-N3): a 503 to retry, never a 500."""

from __future__ import annotations

import base64

import pytest

from idp import create_app

DEAD_DB = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


@pytest.fixture
def dead_app(app_config):
    app = create_app({**app_config, "database_url": DEAD_DB})
    app.config["WTF_CSRF_ENABLED"] = False
    return app


def test_token_endpoint_says_try_again(dead_app) -> None:
    """R-N3: a relying party's token request gets JSON 503 with Retry-After, not a 500."""
    auth = base64.b64encode(b"some-rp:secret").decode()
    resp = dead_app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"},
                                       headers={"Authorization": f"Basic {auth}"})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.get_json()["error"] == "temporarily_unavailable"
    assert "psycopg" not in resp.get_data(as_text=True) and "127.0.0.1:1" not in resp.get_data(as_text=True)


def test_login_page_says_try_again(dead_app) -> None:
    """R-N3: a person signing in sees the service-unavailable page, not a stack trace."""
    resp = dead_app.test_client().post("/login", data={"username": "someone", "password": "x" * 12})
    assert resp.status_code == 503
    assert "Traceback" not in resp.get_data(as_text=True)
