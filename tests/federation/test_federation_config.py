"""The county providers' file (issue 12 item 1): every mistake stops the start with a message saying what."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from idp import create_app
from idp.config import ConfigError
from idp.federation.config import load_file, parse

ENV = {"IDP_COUNTY_SECRET": "s3cret-from-the-county"}
GOOD = {"name": "ntpc", "county": "01", "issuer": "https://sso.ntpc.edu.tw", "client_id": "edu-sso",
        "client_secret_env": "IDP_COUNTY_SECRET"}


def _one(**changes: Any) -> dict[str, Any]:
    entry = {**GOOD, **changes}
    return {"county": [{k: v for k, v in entry.items() if v is not None}]}


def _message(data: dict[str, Any], environ: dict[str, str] | None = None, **kw: Any) -> str:
    with pytest.raises(ConfigError) as exc:
        parse(data, "federation.toml", environ=ENV if environ is None else environ, **kw)
    return str(exc.value)


def test_a_complete_entry_is_read_with_the_defaults_and_the_secret_hidden() -> None:
    """R-L2: an entry with the contract's keys is read; scopes default to openid, match_claim to sub; the
    redirect URI is {issuer}/login/county/{name}/callback; the secret never shows in its repr."""
    (p,) = parse(_one(), environ=ENV)
    assert (p.name, p.county, p.issuer, p.client_id, p.scopes, p.match_claim) == \
        ("ntpc", "01", "https://sso.ntpc.edu.tw", "edu-sso", "openid", "sub")
    assert p.redirect_uri("https://sso.edu.tw") == "https://sso.edu.tw/login/county/ntpc/callback"
    assert p.client_secret == "s3cret-from-the-county" and "s3cret" not in repr(p)


@pytest.mark.parametrize(("data", "expected"), [
    ({"counties": []}, "unknown key(s) counties; counties are [[county]] entries"),
    ({"county": {"name": "ntpc"}}, "'county' must be a list of [[county]] tables"),
    (_one(name=None), "county entry 1: missing 'name'"),
    (_one(county=None, issuer=None), "missing 'county', 'issuer'"),
    (_one(client_id=None), "missing 'client_id'"),
    (_one(client_secret_env=None), "missing 'client_secret_env'"),
    (_one(colour="blue"), "unknown key(s) colour (known: name, county, issuer"),
    (_one(name="New Taipei"), "'name' must be a slug of lower-case letters, digits and '-'"),
    (_one(name=""), "'name' must be a non-empty string"),
    (_one(county="New Taipei"), "'county' must be the school directory's two-character county code"),
    (_one(issuer="sso.ntpc.edu.tw"), "'issuer' must be an https URL without query or fragment"),
    (_one(issuer="https://sso.ntpc.edu.tw/?x=1"), "'issuer' must be an https URL without query or fragment"),
    (_one(issuer="http://sso.ntpc.edu.tw"), "'issuer' must use https (plain http only on a loopback address)"),
    (_one(client_id=42), "'client_id' must be a non-empty string"),
    (_one(client_secret_env="s3cret value!"), "'client_secret_env' must be the NAME of an environment variable"),
    (_one(client_secret_env="IDP_MISSING"), "the environment variable IDP_MISSING (client_secret_env) is not set"),
    (_one(scopes="profile email"), "'scopes' must include openid"),
    (_one(match_claim="two words"), "'match_claim' must be a claim name"),
    ({"county": [GOOD, {**GOOD, "county": "63"}]}, "two county entries are named 'ntpc'"),
    ({"county": [GOOD, {**GOOD, "name": "ntpc2"}]}, "county 01 has two entries ('ntpc' and 'ntpc2')"),
])
def test_each_mistake_has_its_message(data: dict[str, Any], expected: str) -> None:
    """R-L2: each kind of mistake in the county file stops the start with a message naming the entry and key."""
    message = _message(data)
    assert expected in message, message
    assert message.startswith("federation.toml")
    assert "s3cret" not in message


def test_production_refuses_a_plain_http_county() -> None:
    """R-L2: in production even a loopback county must use https."""
    assert "'issuer' must use https in production" in _message(_one(issuer="http://127.0.0.1:9000"), production=True)


def test_a_missing_or_broken_file_says_so(tmp_path: Path) -> None:
    """R-L2: a federation_file that is not there, or not TOML, is named with what is wrong."""
    with pytest.raises(ConfigError, match=r"federation_file .*nope\.toml: not found"):
        load_file(str(tmp_path / "nope.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[[county]\nname = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_file(str(bad))


def test_the_service_starts_with_a_county_that_is_down_and_stops_on_a_bad_file(tmp_path: Path, monkeypatch) -> None:
    """R-L2: create_app reads federation_file at start: a county whose provider does not answer does not stop
    it (nothing is fetched at start), a mistake in the file does."""
    good = tmp_path / "federation.toml"
    good.write_text('[[county]]\nname = "tpe"\ncounty = "63"\nissuer = "http://127.0.0.1:9"\n'
                    'client_id = "edu-sso"\nclient_secret_env = "IDP_COUNTY_SECRET"\n', encoding="utf-8")
    monkeypatch.setenv("IDP_COUNTY_SECRET", "s3cret")
    app = create_app({"IDP_CONFIG": "testing", "federation_file": str(good), "keys_dir": str(tmp_path / "keys")})
    assert list(app.extensions["idp.federation"].clients) == ["tpe"]
    monkeypatch.delenv("IDP_COUNTY_SECRET")
    with pytest.raises(ConfigError, match="IDP_COUNTY_SECRET"):
        create_app({"IDP_CONFIG": "testing", "federation_file": str(good), "keys_dir": str(tmp_path / "keys")})
