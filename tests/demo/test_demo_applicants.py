"""The demo's people without an account (R-N1, R-C2): after ``flask demo load`` a newcomer can apply as each."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from idp.accounts.apply import services as apply_services
from idp.demo.commands import DEMO_APPLICANTS
from idp.extensions import db
from idp.identity.nationalid import NationalId


@pytest.fixture
def loaded(app, monkeypatch, tmp_path):
    settings = dataclasses.replace(app.extensions["idp.settings"], demo_data=True)
    monkeypatch.setitem(app.extensions, "idp.settings", settings)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "load", "--env-file", str(tmp_path / "rp.env")])
    assert result.exit_code == 0, result.output
    return runner, result


def test_demo_load_brings_people_who_can_apply(app, loaded) -> None:
    """R-N1, R-C2: a county pupil, a webHR teacher and a proxy-platform pupil (month and day only) are known to
    the sources, have no account, and are identified by what the README tells a newcomer to type."""
    _, result = loaded
    assert "source  proxy" in result.output
    for spec in DEMO_APPLICANTS:
        with app.test_request_context():
            found = apply_services.identify_applicant(
                school_code=spec.school_code, role=spec.role, name=spec.name,
                national_id=NationalId.parse(spec.national_id), birthday=dt.date.fromisoformat(spec.birthday),
                ip="192.0.2.1")
            db.session.commit()
        assert found.account_id is None, spec.name


def test_demo_load_twice_uploads_the_roster_once(app, loaded, tmp_path) -> None:
    """R-N1: a second demo load adds no second roster and no second person."""
    from idp.identity.models import Person, RosterUpload

    runner, _ = loaded
    people = db.session.scalar(db.select(db.func.count()).select_from(Person))
    again = runner.invoke(args=["demo", "load", "--env-file", str(tmp_path / "rp.env")])
    assert again.exit_code == 0, again.output
    assert db.session.scalar(db.select(db.func.count()).select_from(RosterUpload)) == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(Person)) == people
