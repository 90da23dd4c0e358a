"""Trusted data sources (R-S1..R-S3): adapters behind one protocol, sync, and the resolver.

Owns: ``base`` (DataSource protocol, neutral records), the four adapters (county_sis, k12_registry,
webhr, proxy_roster), ``sync`` (bulk, idempotent, resumable), ``resolver`` (merge, conflicts,
match), ``fake`` (loopback feed servers for tests and the demo), ``generator`` (synthetic people),
the ``flask sources`` commands. Uses identity; must not import login, oidc or admin.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.sources.commands import sources_cli

    app.cli.add_command(sources_cli)
