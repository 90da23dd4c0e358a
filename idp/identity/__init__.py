"""Identity: national IDs, their protection, persons and affiliations (R-S4, R-A2, issue 3 items 1-3).

Owns: ``nationalid`` and ``protection`` (the only code that sees a clear national ID), the
Person / Affiliation / SourceCursor / IdentityConflict / RosterUpload / RosterEntry models.
Must not import login, oidc or admin; sources and schools build on it.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.identity import models  # noqa: F401
    from idp.identity.commands import identity_cli

    app.cli.add_command(identity_cli)
