"""``flask identity rotate``: move encrypted national IDs to the current key after a rotation."""

from __future__ import annotations

import click
from flask.cli import AppGroup

identity_cli = AppGroup("identity", help="Persons and national-ID protection.")


@identity_cli.command("rotate")
def rotate_cmd() -> None:
    """Re-encrypt every stored national ID under identity_current_key_id (old keys must still be listed)."""
    from idp.identity.services import rotate_keys

    click.echo(f"re-encrypted {rotate_keys()} person(s)")
