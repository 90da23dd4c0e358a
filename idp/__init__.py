"""The identity provider application.

``create_app`` only composes (DESIGN rule 1): settings, extensions, then each feature
package's ``init_app`` in the visible order below. Packages own their blueprints, CLI
commands and per-app objects.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from flask import Flask

from idp import cookies, errors, forms, i18n, logs, serving
from idp import db as transaction
from idp.config import load_settings
from idp.extensions import babel, csrf, db, migrate
from idp.store import make_store

# Feature packages, initialised in this order. Later ones may rely on earlier ones.
PACKAGES = (
    "idp.security",
    "idp.notify",
    "idp.accounts",
    "idp.schools",
    "idp.identity",
    "idp.support",
    "idp.sources",
    "idp.oidc",
    "idp.login",
    "idp.federation",
    "idp.admin",
    "idp.demo",
)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build an app from the layered settings; ``config`` overrides keys (tests use it)."""
    settings = load_settings(config)
    app = serving.App(__name__)
    app.extensions["idp.settings"] = settings
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logs.install()
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url),
        SESSION_COOKIE_NAME=settings.cookie_name("idp_session"),
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=settings.sso_session_lifetime,
        WTF_CSRF_TIME_LIMIT=3600,
        MAX_CONTENT_LENGTH=settings.max_request_body,  # any server refuses larger bodies (idp/serving.py)
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        BABEL_TRANSLATION_DIRECTORIES="translations",
        TESTING=settings.env == "testing",
    )
    db.init_app(app)
    transaction.init_app(app)
    migrate.init_app(app, db, directory=_migrations_dir(), render_as_batch=True, compare_type=True)
    cookies.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    app.extensions["idp.store"] = make_store(settings.redis_url, settings.store_prefix)
    i18n.init_app(app)
    errors.init_app(app)
    forms.install_html_params()
    serving.init_app(app)
    for name in PACKAGES:
        importlib.import_module(name).init_app(app)
    if settings.trusted_proxies:
        # Outermost, after the packages' own WSGI layers (oidc's public documents and token
        # endpoint): every layer sees the client's address and scheme, not the proxy's.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    return app


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {}
    # No pre-ping: it costs a round trip on every request. After a database restart SQLAlchemy
    # discards the whole pool at the first failure, and that one request gets a 503 with
    # Retry-After (idp/errors.py), so the price of a restart is one retried request per process.
    return {"pool_pre_ping": False, "pool_size": 5, "max_overflow": 10, "pool_recycle": 3600}


def _migrations_dir() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent / "migrations")
