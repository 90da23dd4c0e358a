"""``flask --app wsgi keys rotate|list|retire`` (issue 2 item 4): signing keys without a restart."""

from __future__ import annotations

import datetime as dt
import json

import click
from flask import current_app
from flask.cli import AppGroup

from idp.db import commit
from idp.oidc import services
from idp.oidc.keys import UnknownKey

keys_cli = AppGroup("keys", help="Manage the ID-token signing keys in keys/.")


def _when(ts: int | None) -> str:
    return "-" if not ts else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


@keys_cli.command("rotate")
@click.option("--alg", type=click.Choice(["RS256", "ES256"]), multiple=True,
              help="Only this algorithm (repeatable); default: every algorithm.")
def rotate(alg: tuple[str, ...]) -> None:
    """Add a new active key per algorithm; the previous one is retired but still published."""
    pairs = services.rotate_signing_keys("cli", tuple(alg) or ("RS256", "ES256"))
    commit()
    for new_kid, old_kid in pairs:
        click.echo(f"new active key {new_kid}" + (f" (retired {old_kid})" if old_kid else ""))


@keys_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_keys(as_json: bool) -> None:
    """Show every key: kid, algorithm, status, dates, and whether the JWKS still publishes it."""
    store = current_app.extensions["idp.keys"]
    published = {k.kid for k in store.published()}
    rows = [{"kid": k.kid, "alg": k.alg, "status": k.status, "created_at": k.created_at,
             "retired_at": k.retired_at, "published": k.kid in published} for k in store.all()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['kid']:<32} {r['alg']:<6} {r['status']:<8} created {_when(r['created_at'])} "
                   f"retired {_when(r['retired_at'])} {'published' if r['published'] else 'unpublished'}")


@keys_cli.command("retire")
@click.argument("kid")
def retire(kid: str) -> None:
    """Retire one key now (a new active key replaces it if it was the last of its algorithm)."""
    try:
        services.retire_signing_key("cli", kid)
        commit()
    except UnknownKey as exc:
        raise click.ClickException(f"no key with kid {kid}") from exc
    click.echo(f"retired {kid}")
