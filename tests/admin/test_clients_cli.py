"""``flask clients …`` (issue 2 item 9, R-O3): the same rules as the console, scriptable with --json."""

from __future__ import annotations

import json

import pytest
from admin_helpers import client_credentials
from joserfc.jwk import RSAKey


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_create_list_show_update_rotate_delete(app, client, cli) -> None:
    """R-O3: the whole life of an app from the command line; the secret is printed only when made."""
    made = _json(cli.invoke(args=["clients", "create", "--name", "校務系統", "--redirect-uri",
                                  "https://app.example.edu.tw/cb", "--grant-type", "authorization_code",
                                  "--grant-type", "client_credentials", "--scope", "openid profile", "--json"]))
    cid, secret = made["client_id"], made["client_secret"]
    assert made["name"] == "校務系統" and made["grant_types"] == ["authorization_code", "client_credentials"]
    assert client_credentials(client, cid, secret).status_code == 200

    listed = _json(cli.invoke(args=["clients", "list", "--json"]))
    assert [c["client_id"] for c in listed] == [cid]
    shown = _json(cli.invoke(args=["clients", "show", cid, "--json"]))
    assert "client_secret" not in shown and shown["has_secret"] is True
    assert secret not in cli.invoke(args=["clients", "list"]).output

    updated = _json(cli.invoke(args=["clients", "update", cid, "--redirect-uri", "https://app.example.edu.tw/new",
                                     "--real-name", "--json"]))
    assert updated["redirect_uris"] == ["https://app.example.edu.tw/new"] and updated["require_real_name"]
    assert updated["scope"] == "openid profile" and "client_secret" not in updated

    rotated = _json(cli.invoke(args=["clients", "rotate-secret", cid, "--json"]))
    assert rotated["client_secret"] != secret
    assert client_credentials(client, cid, secret).status_code == 401
    assert client_credentials(client, cid, rotated["client_secret"]).status_code == 200

    gone = _json(cli.invoke(args=["clients", "delete", cid, "--yes", "--json"]))
    assert gone["deleted"] and gone["tokens_revoked"] == 2
    assert _json(cli.invoke(args=["clients", "list", "--json"])) == []


def test_human_output_shows_the_secret_once_with_a_warning(cli) -> None:
    """R-O3: without --json the secret is printed with the warning that it will not be shown again."""
    result = cli.invoke(args=["clients", "create", "--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb",
                              "--client-id", "my-app"])
    assert result.exit_code == 0
    assert "created my-app" in result.output and "client_secret: " in result.output
    assert "not be shown again" in result.output


def test_public_and_private_key_jwt_clients_have_no_secret(cli, tmp_path) -> None:
    """R-O3: a public app and a private_key_jwt app get no secret to print."""
    public = _json(cli.invoke(args=["clients", "create", "--name", "SPA", "--redirect-uri",
                                    "https://spa.example.edu.tw/cb", "--auth-method", "none", "--json"]))
    assert "client_secret" not in public and public["has_secret"] is False
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [RSAKey.generate_key(2048).as_dict(private=False)]}))
    signed = _json(cli.invoke(args=["clients", "create", "--name", "Signed", "--redirect-uri",
                                    "https://s.example.edu.tw/cb", "--auth-method", "private_key_jwt",
                                    "--jwks-file", str(jwks), "--json"]))
    assert "client_secret" not in signed and signed["jwks"]["keys"][0]["kty"] == "RSA"


@pytest.mark.parametrize(("args", "message"), [
    (["create", "--name", "X", "--redirect-uri", "http://app.example.edu.tw/cb"], "必須使用 https"),  # must use https
    (["create", "--name", "X", "--redirect-uri", "https://a.example/cb", "--scope", "openid root"], "未知的範圍 root"),
    (["create", "--redirect-uri", "https://a.example/cb"], "name: "),
    (["show", "nope"], "沒有用戶端代碼為 nope 的應用程式"),
    (["update", "nope", "--name", "Y"], "nope"),
    (["rotate-secret", "nope"], "nope"),
    (["delete", "nope", "--yes"], "nope"),
])
def test_bad_input_is_a_clear_error_not_a_traceback(cli, args, message) -> None:
    """R-O3: a refused command exits non-zero with the rule it broke (zh-TW first), never a stack trace."""
    result = cli.invoke(args=["clients", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_delete_asks_first(cli) -> None:
    """R-O3: delete without --yes asks, and 'no' keeps the app."""
    made = _json(cli.invoke(args=["clients", "create", "--name", "A", "--redirect-uri", "https://a.example/cb",
                                  "--json"]))
    result = cli.invoke(args=["clients", "delete", made["client_id"]], input="n\n")
    assert result.exit_code != 0
    assert len(_json(cli.invoke(args=["clients", "list", "--json"]))) == 1
