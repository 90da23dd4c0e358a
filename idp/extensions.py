"""Unbound extension singletons, bound to an app in ``create_app`` (Flask's extension pattern).

Per-app objects (the Authlib server, the key set, the store) live in ``app.extensions`` and
are reached through the small accessors below, never through module globals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import Babel
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from idp.db import Base

if TYPE_CHECKING:
    from idp.config import Settings
    from idp.store import MemoryStore, RedisStore

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()


def settings() -> Settings:
    """The running app's typed settings."""
    return current_app.extensions["idp.settings"]


def store() -> MemoryStore | RedisStore:
    """The running app's short-lived state store (Redis or in-process)."""
    return current_app.extensions["idp.store"]
