"""The school directory: county → district → school level (學制) → school (R-S5, issue 3 item 4).

Owns: the County / District / School models, loaders for a CSV file and for the ministry's
public directory JSON, the bundled sample directory, ``flask schools load|list`` and the JSON
picker endpoints under ``/api/schools`` that the apply, recover and proxy pages cascade through.
Must not import accounts, login, oidc or admin; identity and sources may read it.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.schools import models  # noqa: F401
    from idp.schools.commands import schools_cli
    from idp.schools.views import bp

    app.register_blueprint(bp)
    app.cli.add_command(schools_cli)
