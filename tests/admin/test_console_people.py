"""Operator views of people and identity conflicts (issue 3 item 9, R-S2, R-N3).

A national ID typed by an operator is hashed on arrival: it never comes back in a page, a
redirect, a log line or an audit row, and every look-up is audited under the operator's name.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
import sqlalchemy as sa
from admin_helpers import csrf_from, post_form

from idp.extensions import db
from idp.identity.models import IdentityConflict, Person
from idp.identity.nationalid import NationalId, check_digit
from idp.schools import loaders
from idp.security import ratelimit
from idp.security.models import AuditEvent
from idp.sources import resolver
from idp.sources.base import AffiliationRecord, PersonRecord

KNOWN = "F" + "2" + "2345678"
KNOWN = KNOWN + check_digit(KNOWN)
UNKNOWN = "Q1" + "7654321"
UNKNOWN = UNKNOWN + check_digit(UNKNOWN)


@pytest.fixture
def person(app) -> Person:
    """One pupil known to two sources that disagree about her name (a conflict is opened)."""
    nid = NationalId.parse(KNOWN)
    moved = AffiliationRecord("014569", "學生", grade=3, class_no="05", class_name="三年五班", academic_year=114,
                              semester=1)
    left = AffiliationRecord("013601", "學生", grade=2, class_no="01", academic_year=113, semester=2, active=False)
    resolver.merge_batch("county:ntpc", [PersonRecord("county:ntpc", nid, "林怡君", dt.date(2016, 3, 9),
                                                      affiliations=(moved, left))])
    resolver.merge_batch("proxy", [PersonRecord("proxy", nid, "林宜君", birth_month_day="0309",
                                                 affiliations=(moved,))])
    loaders.apply([(1, loaders.make_row(code="014569", name="新北市板橋區新埔國民小學", county_code="01",
                                         county="新北市", district="板橋區", level="國小"))])
    db.session.commit()
    return db.session.scalar(sa.select(Person))


def _lookup(console, raw: str):
    return post_form(console, "/admin/people", {"national_id": raw})


def _everything_said(caplog, resp, console) -> str:
    rows = db.session.scalars(sa.select(AuditEvent)).all()
    return "\n".join([resp.get_data(as_text=True), resp.headers.get("Location", ""), caplog.text,
                      json.dumps([[r.event, r.actor, r.data] for r in rows], ensure_ascii=False)])


def test_find_a_person_by_id_without_the_id_going_anywhere(app, console, person, caplog) -> None:
    """R-S2: the look-up finds the person; the ID is in no response, redirect, log line or audit row."""
    caplog.set_level(logging.DEBUG)
    typed = f" {KNOWN.lower()[:3]}-{KNOWN[3:]} "  # as people type it: spaces, a dash, lower case
    resp = _lookup(console, typed)
    assert resp.status_code == 302 and resp.headers["Location"] == f"/admin/people/{person.id}"
    page = console.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert "林怡君" in html and "014569" in html and "三年五班" in html and 'data-status="left"' in html
    assert "新北市板橋區新埔國民小學" in html  # the school's name from the directory beside its code
    assert "county:ntpc" in html and "proxy" in html
    said = _everything_said(caplog, resp, console) + html
    for form in (KNOWN, KNOWN.lower(), KNOWN[1:]):
        assert form not in said
    lookups = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "identity.lookup")).all()
    assert [(e.actor, e.data) for e in lookups] == [("operator1", {"found": True, "person_id": person.id})]
    viewed = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "identity.viewed")).all()
    assert [e.data for e in viewed] == [{"person_id": person.id}]


def test_unknown_and_invalid_numbers(app, console, person, caplog) -> None:
    """R-S2: an unknown number is audited by a truncated blind index; an invalid one says what is wrong."""
    caplog.set_level(logging.DEBUG)
    resp = _lookup(console, UNKNOWN)
    assert resp.status_code == 404
    assert "沒有任何來源認得這個號碼" in resp.get_data(as_text=True)
    assert UNKNOWN not in _everything_said(caplog, resp, console)
    row = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "identity.lookup")).one()
    assert row.data["found"] is False and len(row.data["blind_index_prefix"]) == 12
    bad = UNKNOWN[:-1] + str((int(UNKNOWN[-1]) + 1) % 10)
    resp = _lookup(console, bad)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "檢查碼不符" in html and bad not in html  # zh-TW first: "the check digit does not match"


def test_lookups_are_rate_limited_per_operator(app, console, person, monkeypatch) -> None:
    """R-N3: an operator's hourly allowance of ID look-ups is enforced (429 with Retry-After)."""
    monkeypatch.setattr(ratelimit, "nationalid_lookup", lambda: ratelimit.Limit("nationalid.lookup", 2, 3600))
    assert _lookup(console, UNKNOWN).status_code == 404
    assert _lookup(console, KNOWN).status_code == 302
    resp = _lookup(console, KNOWN)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0


def test_conflicts_are_listed_and_resolved_with_a_source_value(app, console, person) -> None:
    """R-S2: a disagreement is shown, never merged; the operator picks a source's value and says why."""
    conflict = db.session.scalar(sa.select(IdentityConflict))
    assert conflict.field == "name" and person.name == "林怡君"
    page = console.get("/admin/conflicts").get_data(as_text=True)
    assert f'data-conflict="{conflict.id}"' in page and "林宜君" in page
    path = f"/admin/conflicts/{conflict.id}"
    refused = post_form(console, path, {"chosen": "王大明", "note": "typed"})
    assert refused.status_code == 400
    no_note = post_form(console, path, {"chosen": "林宜君", "note": ""})
    assert no_note.status_code == 400
    done = post_form(console, path, {"chosen": "林宜君", "note": "school office confirmed by phone"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Person, person.id).name == "林宜君"
    resolved = db.session.get(IdentityConflict, conflict.id)
    assert (resolved.status, resolved.resolved_by) == ("resolved", "operator1")
    assert "目前沒有待處理的衝突" in console.get("/admin/conflicts").get_data(as_text=True)
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "identity.conflict_resolved")).one()
    assert event.data["source"] == ["proxy"] and event.actor == "operator1"
    again = console.post(path, data={"chosen": "林怡君", "note": "x",
                                     "csrf_token": csrf_from(console.get("/admin/people").get_data(as_text=True))})
    assert again.status_code == 409
    assert db.session.get(Person, person.id).name == "林宜君"


def test_unknown_person_and_conflict_are_404(app, console) -> None:
    """R-S2: a person or conflict number that does not exist is a 404 page, not an error."""
    assert console.get("/admin/people/999999").status_code == 404
    assert console.get("/admin/conflicts/999999").status_code == 404
    assert console.get("/admin/people/99999999999999999999").status_code == 404  # beyond any id, not a 500


def test_a_month_day_confirmed_replaces_a_disagreeing_full_date(app, console) -> None:
    """R-S3: choosing the roster's month-day drops the full date that disagrees with it."""
    nid = NationalId.parse(UNKNOWN)
    resolver.merge_batch("county:ntpc", [PersonRecord("county:ntpc", nid, "張三", dt.date(2016, 3, 9))])
    resolver.merge_batch("proxy", [PersonRecord("proxy", nid, "張三", birth_month_day="0310")])
    db.session.commit()
    conflict = db.session.scalar(sa.select(IdentityConflict).where(IdentityConflict.field == "birthday"))
    assert conflict is not None
    done = post_form(console, f"/admin/conflicts/{conflict.id}", {"chosen": "0310", "note": "parent's ID card"})
    assert done.status_code == 302
    db.session.expire_all()
    person = db.session.scalar(sa.select(Person).where(Person.blind_index == conflict.blind_index))
    assert (person.birth_date, person.birth_month_day) == (None, "0310")


def test_walking_person_pages_uses_the_lookup_allowance(app, console, person, monkeypatch) -> None:
    """R-N3: opening /admin/people/<id> pages one after another counts against the hourly allowance."""
    monkeypatch.setattr(ratelimit, "nationalid_lookup", lambda: ratelimit.Limit("nationalid.lookup", 3, 3600))
    found = _lookup(console, KNOWN)
    assert found.status_code == 302
    assert console.get(found.headers["Location"]).status_code == 200  # the look-up's own page: counted once
    for _ in range(2):
        assert console.get(f"/admin/people/{person.id}").status_code == 200
    walked = console.get(f"/admin/people/{person.id + 1}")
    assert walked.status_code == 429 and int(walked.headers["Retry-After"]) > 0
