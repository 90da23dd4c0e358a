"""``flask --app wsgi clients create|list|show|update|rotate-secret|delete`` (issue 2 item 9, R-O3).

The same rules as the console (``idp.oidc.registration``). ``--json`` prints machine-readable
output for scripts; the client secret appears in it exactly once, when it is made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup

from idp.db import commit
from idp.errors import IdpError
from idp.oidc import registration as services

clients_cli = AppGroup("clients", help="Register and manage relying-party apps (OIDC clients).")
ACTOR = "cli"


def _fail(exc: IdpError) -> click.ClickException:
    field = getattr(exc, "field", None)
    return click.ClickException(f"{field}: {exc.message}" if field else str(exc.message))


def _registration_options(func: Any) -> Any:
    """Options shared by create and update; on update, an option not given leaves the field alone."""
    options = [
        click.option("--name", help="Name shown to people on the consent page."),
        click.option("--redirect-uri", "redirect_uris", multiple=True,
                     help="Exact redirect URI (repeatable; https unless loopback). On update, replaces the list."),
        click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True,
                     help="Where RP-initiated logout may return (repeatable)."),
        click.option("--backchannel-logout-uri", help="Where logout tokens are POSTed ('' to remove)."),
        click.option("--grant-type", "grant_types", multiple=True, type=click.Choice(services.GRANT_TYPES),
                     help="Grant type (repeatable) [default: authorization_code + refresh_token]."),
        click.option("--scope", help="Space-separated scopes the app may ask for [default: openid profile email]."),
        click.option("--auth-method", "token_endpoint_auth_method", type=click.Choice(services.AUTH_METHODS),
                     help="Token endpoint authentication [default: client_secret_basic]; 'none' for public apps."),
        click.option("--jwks-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="The app's public key set (JSON) for private_key_jwt."),
        click.option("--jwks-uri", help="URL of the app's public key set, for private_key_jwt."),
        click.option("--alg", "id_token_signed_response_alg", type=click.Choice(services.ID_TOKEN_ALGS),
                     help="ID token signing algorithm [default: RS256]."),
        click.option("--subject-type", type=click.Choice(services.SUBJECT_TYPES),
                     help="pairwise (default: a different sub per sector) or public."),
        click.option("--sector-identifier", help="Sector URI shared by apps that must see the same pairwise sub."),
        click.option("--subject-format", type=click.Choice(services.SUBJECT_FORMATS),
                     help="opaque (default) or uuid: sub written as a UUID, for apps that store it in UUID "
                          "columns. Changing it later changes every sub the app sees."),
        click.option("--ministry-compatible/--not-ministry-compatible", "ministry_compatible", default=None,
                     help="An app moving over from the ministry's service (R-O4): registered for its scopes, "
                          "UUID subjects unless --subject-format says otherwise, eduinfo without asking; "
                          "see docs/ministry-compatibility.md."),
        click.option("--real-name/--no-real-name", "require_real_name", default=None,
                     help="Only people with a verified real-name cloud account may sign in."),
        click.option("--skip-consent/--ask-consent", "skip_consent", default=None,
                     help="First-party app trusted to skip the consent page."),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _collect(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Only the options the operator gave (None and empty tuples mean 'not given')."""
    data: dict[str, Any] = {}
    jwks_file = kwargs.pop("jwks_file", None)
    if jwks_file is not None:
        data["jwks"] = jwks_file.read_text(encoding="utf-8")
    for key, value in kwargs.items():
        if value is None or value == ():
            continue
        data[key] = list(value) if isinstance(value, tuple) else value
    return data


def _print(reg: services.Registered, as_json: bool, verb: str) -> None:
    out = services.describe(reg.client)
    if reg.secret:
        out["client_secret"] = reg.secret
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    click.echo(f"{verb} {out['client_id']}  {out['name']}")
    if reg.secret:
        click.echo(f"client_secret: {reg.secret}")
        click.echo("Store the secret now: it is kept only as a hash and will not be shown again.")


@clients_cli.command("create")
@click.option("--client-id", help="Choose the client ID (default: 32 random hex characters).")
@_registration_options
def create(client_id: str | None, as_json: bool, **kwargs: Any) -> None:
    """Register an app; a confidential app's secret is printed this once."""
    try:
        reg = services.create_client(_collect(kwargs), ACTOR, client_id=client_id)
        commit()
    except IdpError as exc:
        raise _fail(exc) from exc
    _print(reg, as_json, "created")


@clients_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json: bool) -> None:
    """Every registered app."""
    rows = [services.describe(c) for c in services.list_clients()]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        click.echo(f"{r['client_id']:<34} {r['token_endpoint_auth_method']:<20} {' '.join(r['grant_types']):<40} "
                   f"{r['name']}")


@clients_cli.command("show")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(client_id: str, as_json: bool) -> None:
    """One app's registration (never its secret)."""
    try:
        out = services.describe(services.get_client(client_id))
    except IdpError as exc:
        raise _fail(exc) from exc
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for key, value in out.items():
        click.echo(f"{key:<28} {' '.join(value) if isinstance(value, list) else value}")


@clients_cli.command("update")
@click.argument("client_id")
@_registration_options
def update(client_id: str, as_json: bool, **kwargs: Any) -> None:
    """Change the given fields; a switch to a secret method prints the new secret once."""
    try:
        reg = services.update_client(client_id, _collect(kwargs), ACTOR)
        commit()
    except IdpError as exc:
        raise _fail(exc) from exc
    _print(reg, as_json, "updated")


@clients_cli.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def rotate_secret(client_id: str, as_json: bool) -> None:
    """A new secret at once; the old one stops working in every process."""
    try:
        reg = services.rotate_secret(client_id, ACTOR)
        commit()
    except IdpError as exc:
        raise _fail(exc) from exc
    _print(reg, as_json, "new secret for")


@clients_cli.command("delete")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def delete(client_id: str, yes: bool, as_json: bool) -> None:
    """Remove an app: its tokens are revoked and the consents given to it forgotten."""
    if not yes:
        click.confirm(f"Delete {client_id}, revoke its tokens and forget its consents?", abort=True)
    try:
        counts = services.delete_client(client_id, ACTOR)
        commit()
    except IdpError as exc:
        raise _fail(exc) from exc
    if as_json:
        click.echo(json.dumps({"client_id": client_id, "deleted": True, **counts}))
        return
    click.echo(f"deleted {client_id}: {counts['tokens_revoked']} tokens revoked, "
               f"{counts['consents_removed']} consents removed")
