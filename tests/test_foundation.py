"""Foundation: configuration is validated, the schema migrates, the store works."""

from __future__ import annotations

import pytest

from idp.config import ConfigError, load_settings


def test_production_refuses_default_secret() -> None:
    """R-N2: production does not start with the default secret key."""
    with pytest.raises(ConfigError, match="IDP_SECRET_KEY"):
        load_settings({"IDP_CONFIG": "production.example"}, environ={})


def test_production_refuses_plain_http_issuer() -> None:
    """R-N2: production needs an https issuer unless it is loopback."""
    env = {"IDP_SECRET_KEY": "x" * 40, "IDP_SUBJECT_SECRET": "y" * 40, "IDP_ISSUER": "http://sso.example.edu.tw"}
    with pytest.raises(ConfigError, match="https issuer"):
        load_settings({"IDP_CONFIG": "production.example"}, environ=env)


def test_production_refuses_missing_redis() -> None:
    """R-N2: production needs Redis so several processes share one state."""
    env = {"IDP_SECRET_KEY": "x" * 40, "IDP_SUBJECT_SECRET": "y" * 40, "IDP_REDIS_URL": ""}
    with pytest.raises(ConfigError, match="IDP_REDIS_URL"):
        load_settings({"IDP_CONFIG": "production.example"}, environ=env)


def test_environment_variable_overrides_and_types() -> None:
    """R-N1: IDP_* variables override files and are typed; a bad value names its key."""
    s = load_settings({"IDP_CONFIG": "testing"}, environ={"IDP_ACCESS_TOKEN_LIFETIME": "120"})
    assert s.access_token_lifetime == 120
    with pytest.raises(ConfigError, match="access_token_lifetime"):
        load_settings({"IDP_CONFIG": "testing"}, environ={"IDP_ACCESS_TOKEN_LIFETIME": "soon"})


def test_store_code_is_redeemed_once(app) -> None:
    """R-N2: getdel hands a value to exactly one caller."""
    store = app.extensions["idp.store"]
    store.set("k", "v", 10)
    assert store.getdel("k") == b"v"
    assert store.getdel("k") is None
