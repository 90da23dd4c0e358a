"""County sign-in fixtures: a county's provider over real HTTP, the app configured with it, people the
county's records list with a county account (through the sources' merge, as a sync would)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from county_op import CLIENT_ID, CLIENT_SECRET, CountyOP, dead_port, serve_county

from idp.extensions import db

SECRET_ENV = "IDP_TEST_COUNTY_SECRET"


@pytest.fixture(scope="module")
def county_server() -> Iterator[CountyOP]:
    with serve_county() as op:
        yield op


@pytest.fixture
def county(county_server: CountyOP) -> CountyOP:
    """The county's provider with a clean slate: two pupils with accounts there, nothing tampered."""
    op = county_server
    op.tamper.clear()
    op.codes.clear()
    op.requests.clear()
    op.id_token_claims.clear()
    op.end_session = True
    del op.keys[1:]
    op.users.clear()
    op.users.update({
        "wang": {"sub": "ntpc-sub-0001", "preferred_username": "wangxm2016", "name": "王小明"},
        "lin": {"sub": "ntpc-sub-0002", "preferred_username": "linxh2016", "name": "林小華"},
        "stranger": {"sub": "ntpc-sub-0999", "preferred_username": "nobody2016", "name": "路人"},
    })
    op.user = "wang"
    return op


def providers_toml(op: CountyOP, down_port: int) -> dict[str, Any]:
    return {"county": [
        {"name": "ntpc", "county": "01", "issuer": op.issuer, "client_id": CLIENT_ID, "client_secret_env": SECRET_ENV,
         "scopes": "openid profile", "match_claim": "preferred_username"},
        {"name": "tpe", "county": "63", "issuer": f"http://127.0.0.1:{down_port}", "client_id": "edu-sso",
         "client_secret_env": SECRET_ENV},
    ]}


@pytest.fixture
def counties(app: Any, county: CountyOP) -> Iterator[Any]:
    """The app with 新北市 (the fake county) and 臺北市 (a provider that is down) configured; the school
    directory's sample loaded (the county names come from it)."""
    from idp.federation.client import Federation
    from idp.federation.config import parse
    from idp.schools.commands import SAMPLE
    from idp.schools.loaders import load_file

    load_file(SAMPLE.read_text(encoding="utf-8"), "csv")
    db.session.commit()
    s = app.extensions["idp.settings"]
    providers = parse(providers_toml(county, dead_port()), environ={SECRET_ENV: CLIENT_SECRET})
    original = app.extensions["idp.federation"]
    app.extensions["idp.federation"] = Federation(providers, our_issuer=s.issuer, timeout=2.0, metadata_ttl=300)
    try:
        yield app.extensions["idp.federation"]
    finally:
        app.extensions["idp.federation"] = original
