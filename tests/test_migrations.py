"""Migrations are code (DESIGN rule 10): the chain round-trips with data and matches the models."""

from __future__ import annotations

import os

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from idp import create_app
from idp.extensions import db


def _root_conftest():
    """tests/conftest.py by path: the module name ``conftest`` belongs to whichever conftest pytest imported
    last (tests/oidc/, tests/e2e/, ...), so ``from conftest import`` breaks in a whole-suite run."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("idp_tests_root_conftest", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_root = _root_conftest()
BACKEND, PG_URL, ensure_database = _root.BACKEND, _root.PG_URL, _root.ensure_database


@pytest.fixture
def scratch_app(app_config, tmp_path):
    """An app on its own empty database, so dropping everything disturbs no other test."""
    if BACKEND == "postgres":
        url = sa.engine.make_url(PG_URL).set(database=f"{sa.engine.make_url(PG_URL).database}_migrations")
        url = url.render_as_string(hide_password=False)
        ensure_database(url)
    else:
        url = f"sqlite:///{tmp_path / 'migrations.sqlite'}"
    app = create_app({**app_config, "database_url": url, "store_prefix": f"idpmig{os.getpid()}:"})
    with app.app_context():
        meta = sa.MetaData()
        meta.reflect(bind=db.engine)
        meta.drop_all(bind=db.engine)
    yield app
    with app.app_context():
        db.engine.dispose()


def _count(table: str) -> int:
    with db.engine.connect() as conn:  # its own short transaction: no lock left for DROP TABLE to wait on
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608


def test_upgrade_downgrade_upgrade_with_data(scratch_app) -> None:
    """R-N4: upgrade, add data, downgrade to the previous head and up again: the data survives."""
    with scratch_app.app_context():
        flask_migrate.upgrade()
        db.session.execute(sa.text(
            "INSERT INTO account (public_id, username, name, kind, status, is_operator, email_verified, "
            "phone_verified) VALUES ('pub1', 'keeper', '留存', 'cloud', 'active', false, false, false)"))
        db.session.commit()
        db.session.remove()
        # Step down every revision after the first and back up: later tables go and come back,
        # the first revision's data stays.
        flask_migrate.downgrade(revision="0001")
        flask_migrate.upgrade()
        assert _count("account") == 1
        flask_migrate.downgrade(revision="base")
        assert "account" not in sa.inspect(db.engine).get_table_names()
        flask_migrate.upgrade()
        assert _count("account") == 0


def test_identity_indexes_migration_keeps_mirror_rows(scratch_app) -> None:
    """R-N4, R-S2: 0004 (one unique index on blind index + source) up and down with mirror rows present;
    the rows stay and a second row for the same person and source is still refused."""
    mirror = ("INSERT INTO source_record (source, blind_index, name, affiliations, seen_at) "
              "VALUES (:s, 'bi1', '王小明', '[]', CURRENT_TIMESTAMP)")
    with scratch_app.app_context():
        flask_migrate.upgrade(revision="0003")
        db.session.execute(sa.text(mirror), {"s": "county-63"})
        db.session.commit()
        db.session.remove()
        flask_migrate.upgrade(revision="0004")
        db.session.execute(sa.text(mirror), {"s": "k12"})
        db.session.commit()
        with pytest.raises(sa.exc.IntegrityError):
            db.session.execute(sa.text(mirror), {"s": "k12"})
        db.session.rollback()
        db.session.remove()
        flask_migrate.downgrade(revision="0003")
        assert _count("source_record") == 2
        flask_migrate.upgrade()
        assert _count("source_record") == 2


def test_models_and_migrations_agree(scratch_app) -> None:
    """R-N4: no drift between the models and the migration chain (what `flask db check` checks)."""
    with scratch_app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
        assert diff == [], diff
