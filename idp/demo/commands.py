"""``flask --app wsgi demo load``: demo accounts and the demo relying party (issue 2 item 11).

Idempotent: running it again changes nothing that is already right; a missing account or
client is created, and the demo client's registration is brought back to the values below.
The demo client's secret is generated here, stored hashed on the client, and written in clear
only to the env file the demo relying party reads (``instance/demo_rp.env``, mode 0600); a
second run keeps the secret if the file still matches the client.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from idp.errors import NotFound
from idp.extensions import db, settings

demo_cli = AppGroup("demo", help="Demo data for a first run (never in production).")

DEMO_CLIENT_ID = "demo-rp"
DEMO_RP_URL = "http://127.0.0.1:5001"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    name: str
    email: str
    kind: str
    is_operator: bool = False


# Documented in README.md: change them anywhere the demo is reachable by others.
DEMO_ACCOUNTS = (
    DemoAccount("student", "Student-Demo-2026", "王小明", "student@demo.example.edu.tw", "cloud"),
    DemoAccount("teacher", "Teacher-Demo-2026", "陳美玲", "teacher@demo.example.edu.tw", "cloud"),
    DemoAccount("operator", "Operator-Demo-2026", "維運人員", "operator@demo.example.edu.tw", "member",
                is_operator=True),
)


def _ensure_account(spec: DemoAccount) -> bool:
    """Create the account unless it exists; True if created."""
    from idp.accounts import services

    if services.get_account_by_username(spec.username) is not None:
        return False
    services.create_account(spec.username, spec.password, name=spec.name, email=spec.email,
                            email_verified=True, kind=spec.kind, is_operator=spec.is_operator, actor="demo")
    db.session.commit()
    return True


def _read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Written by `flask demo load`: the demo relying party's registration. Keep it private.\n")
        for key, value in values.items():
            fh.write(f"{key}={value}\n")
    os.replace(tmp, path)


def _ensure_client(rp_url: str, env_file: Path) -> tuple[bool, bool]:
    """Register (or re-align) the demo client through the operator rules; return (created, secret_rotated)."""
    from idp.admin import services as admin

    registration = {
        "name": "示範應用程式 Demo RP",
        "redirect_uris": [f"{rp_url}/callback"],
        "post_logout_redirect_uris": [f"{rp_url}/"],
        "backchannel_logout_uri": f"{rp_url}/backchannel-logout",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile email phone",
        "token_endpoint_auth_method": "client_secret_basic",
        "id_token_signed_response_alg": "RS256",
        "subject_type": "pairwise",
        "require_real_name": False,
        "skip_consent": False,
    }
    current = _read_env_file(env_file).get("DEMO_RP_CLIENT_SECRET")
    try:
        client = admin.get_client(DEMO_CLIENT_ID)
    except NotFound:
        reg = admin.create_client(registration, "demo", client_id=DEMO_CLIENT_ID)
        created, secret = True, reg.secret
    else:
        admin.update_client(DEMO_CLIENT_ID, registration, "demo")
        created = False
        secret = current if current and client.check_client_secret(current) else None
        if secret is None:
            secret = admin.rotate_secret(DEMO_CLIENT_ID, "demo").secret
    _write_env_file(env_file, {
        "DEMO_RP_ISSUER": settings().issuer,
        "DEMO_RP_CLIENT_ID": DEMO_CLIENT_ID,
        "DEMO_RP_CLIENT_SECRET": secret or "",
        "DEMO_RP_BASE_URL": rp_url,
    })
    return created, secret != current


@demo_cli.command("load")
@click.option("--rp-url", default=DEMO_RP_URL, show_default=True,
              help="Base URL of the demo relying party (its redirect and logout URIs hang off it).")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the demo client's id and secret [default: instance/demo_rp.env].")
def load(rp_url: str, env_file: Path | None) -> None:
    """Create the demo accounts and register the demo relying party (idempotent)."""
    s = settings()
    if s.env == "production":
        raise click.ClickException("demo data is never loaded in production")
    if not s.demo_data:
        raise click.ClickException("demo data is switched off: set demo_data = true (IDP_DEMO_DATA=1)")
    rp_url = rp_url.rstrip("/")
    env_file = env_file or Path(current_app.instance_path) / "demo_rp.env"
    for spec in DEMO_ACCOUNTS:
        made = _ensure_account(spec)
        click.echo(f"account {spec.username:<9} {'created' if made else 'already there'}")
    created, rotated = _ensure_client(rp_url, env_file)
    state = "registered" if created else "already registered"
    click.echo(f"client  {DEMO_CLIENT_ID:<9} {state}; redirect {rp_url}/callback; "
               f"secret {'new' if rotated else 'kept'}, in {env_file}")
