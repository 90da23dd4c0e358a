"""Customer service: "I can't find my school" reports, the FAQ and the contact details (R-C3, R-H1).

Owns: the ``support_report`` table and its rules (``services``: a report is stored with status
new → answered → closed, each step audited), the public help pages at ``/help`` (常見問題, 聯絡我們,
我找不到我的學校). The operator console's queue (``/admin/support``) is a view over ``services``.
Must not import login, oidc, admin or the account flows; it calls ``idp.notify`` to mail an answer.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.support import models  # noqa: F401
    from idp.support.views import bp

    app.register_blueprint(bp)
