"""The identification step apply, reset and activate share, and the wizard state behind the flows (R-C2, R-C6)."""

from __future__ import annotations

import datetime as dt
import logging

import factories
import pytest

from idp.accounts import identify
from idp.errors import RateLimited
from idp.extensions import db
from idp.identity.nationalid import NationalId
from idp.schools import loaders
from idp.sources.base import AffiliationRecord
from idp.wizard import StepMissing, Wizard

PUPIL_ID = "A123456789"
SCHOOL = "014601"
PUPIL = AffiliationRecord(SCHOOL, "學生", grade=3, class_no="05", class_name="三年五班", academic_year=114, semester=1)


@pytest.fixture
def pupil(app):
    loaders.apply([(1, loaders.make_row(code=SCHOOL, name="新北市板橋區板橋國民小學", county_code="01",
                                         county="新北市", district="板橋區", level="國小"))])
    person = factories.person(PUPIL_ID, PUPIL, name="王小明", birth_date=dt.date(2016, 5, 21))
    db.session.commit()
    return person


def _identify(app, *, name="王小明", birthday=dt.date(2016, 5, 21), school=SCHOOL, role="學生", nid=PUPIL_ID):
    with app.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.9"}):
        return identify.identify(school_code=school, role=role, name=name, national_id=NationalId.parse(nid),
                                 birthday=birthday, ip="192.0.2.9")


def test_the_person_at_the_chosen_school_is_found_with_a_masked_number(app, pupil) -> None:
    """R-C2: name, ID and birthday of a pupil at the chosen school identify them; only the masked number comes back."""
    found = _identify(app)
    assert (found.person_id, found.school_code, found.role, found.masked_id) == (pupil.id, SCHOOL, "學生",
                                                                                  "A1******89")
    assert PUPIL_ID not in str(found.as_state())


@pytest.mark.parametrize("change", [{"name": "王大明"}, {"birthday": dt.date(2016, 5, 22)}, {"school": "014602"},
                                    {"role": "教師"}, {"nid": "F131104093"}])
def test_anything_that_does_not_match_gets_the_same_no_data_answer(app, pupil, change) -> None:
    """R-C6: another name, birthday, school, role or number all get the one "no personal data" answer."""
    with pytest.raises(identify.NoPersonalData):
        _identify(app, **change)


def test_a_month_day_source_matches_on_month_and_day(app) -> None:
    """R-S3, R-C2: a proxy-platform pupil (month and day only) is identified by the birthday typed with its year."""
    loaders.apply([(1, loaders.make_row(code="380301", name="臺北市私立示範國民小學", county_code="63",
                                         county="臺北市", district="大安區", level="國小", ownership="私立"))])
    factories.person("F131104093", AffiliationRecord("380301", "學生", grade=2), name="林小華", birth_date=None,
                     birth_month_day="0309", source="proxy")
    db.session.commit()
    found = _identify(app, name="林小華", birthday=dt.date(2017, 3, 9), school="380301", nid="F131104093")
    assert found.masked_id == "F1******93"


def test_guessing_one_number_is_stopped(app, pupil, caplog) -> None:
    """R-N3: after recover_failures_per_id misses on one number the step is refused (429); no ID is logged."""
    caplog.set_level(logging.DEBUG)
    for _ in range(app.extensions["idp.settings"].recover_failures_per_id):
        with pytest.raises(identify.NoPersonalData):
            _identify(app, name="猜猜看")
    with pytest.raises(RateLimited):
        _identify(app)  # even the right data now waits
    assert PUPIL_ID not in caplog.text and PUPIL_ID[1:] not in caplog.text


def test_the_advice_names_the_database_the_school_uses(app, pupil) -> None:
    """R-C6: the no-data answer says where the school's data comes from (a county's student-affairs system here)."""
    with app.test_request_context():
        advice = identify.advice_for(SCHOOL, "學生")
        assert "學務系統" in str(advice["database"]) and not advice["high_school"]


def test_wizard_state_stays_on_the_server_and_ends_when_cleared(app, client) -> None:
    """R-C2: a flow's answers live in the store under a random id, never in the cookie; clear ends them."""
    with app.test_request_context():
        wizard = Wizard("apply")
        with pytest.raises(StepMissing) as missing:
            wizard.require([("school", "school_code"), ("person", "person_id")])
        assert missing.value.step == "school"
        wizard.update(school_code=SCHOOL, name="王小明")
        from flask import session

        assert "王小明" not in str(dict(session)) and wizard.get("school_code") == SCHOOL
        again = Wizard("apply")
        assert again.get("name") == "王小明"
        again.clear()
        assert Wizard("apply").state == {}
