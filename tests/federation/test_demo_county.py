"""``flask demo county`` (issue 12 item 5): an instance of this provider set up to play 新北市's provider."""

from __future__ import annotations

import dataclasses
import stat

import pytest

from idp.accounts import services as accounts
from idp.extensions import db
from idp.federation.config import load_file
from idp.oidc.models import Client


@pytest.fixture
def demo_on(app, monkeypatch):
    settings = dataclasses.replace(app.extensions["idp.settings"], demo_data=True, issuer="http://localhost:5002")
    monkeypatch.setitem(app.extensions, "idp.settings", settings)


def _env(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and line[0] != "#")


def test_demo_county_registers_the_national_service_and_writes_its_federation_file(app, demo_on, tmp_path) -> None:
    """R-L2: the county instance gets the demo pupils' county accounts (the ones its source exports as
    縣市帳號) and the national service as a client with our callback and post-logout URIs; the federation
    file it writes is valid for the national service, the secret only in the env file; twice is harmless."""
    from idp.demo.commands import DEMO_COUNTY_PASSWORD, demo_county_accounts

    env_file, fed_file = tmp_path / "county.env", tmp_path / "federation.toml"
    args = ["demo", "county", "--rp-issuer", "http://127.0.0.1:5000", "--env-file", str(env_file),
            "--federation-file", str(fed_file)]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    names = dict(demo_county_accounts())
    assert set(names.values()) == {"王小明", "林小華"}
    for username in names:
        account = accounts.get_account_by_username(username)
        assert account is not None and accounts.authenticate(username, DEMO_COUNTY_PASSWORD, "127.0.0.1")
    client = db.session.execute(db.select(Client).filter_by(client_id="edu-sso")).scalar_one()
    assert client.redirect_uris == ["http://127.0.0.1:5000/login/county/ntpc/callback"]
    assert client.post_logout_redirect_uris == ["http://127.0.0.1:5000/login/county/ntpc/logged-out"]
    secret = _env(env_file)["IDP_COUNTY_NTPC_SECRET"]
    assert client.check_client_secret(secret) and secret not in result.output
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    (provider,) = load_file(str(fed_file), environ={"IDP_COUNTY_NTPC_SECRET": secret})
    assert (provider.name, provider.county, provider.issuer, provider.match_claim) == \
        ("ntpc", "01", "http://localhost:5002", "preferred_username")
    again = app.test_cli_runner().invoke(args=args)
    assert again.exit_code == 0 and "already there" in again.output
    assert _env(env_file)["IDP_COUNTY_NTPC_SECRET"] == secret


def test_demo_county_refuses_without_demo_data(app) -> None:
    """R-L2: like demo load, never without demo_data (the testing configuration has it off)."""
    result = app.test_cli_runner().invoke(args=["demo", "county"])
    assert result.exit_code != 0 and "demo data is switched off" in result.output
