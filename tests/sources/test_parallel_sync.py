"""A sync split over worker processes gives the same rows as one process (issue 3 item 8, R-S1, R-S2).

The workers commit on their own connections, outside the test's rolled-back transaction, so this
test removes what it wrote itself. On the embedded backend (SQLite) the sync stays in one process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from idp.extensions import db
from idp.identity import protection
from idp.identity.models import Affiliation, Person, SourceCursor, SourceRecord
from idp.identity.nationalid import NationalId
from idp.sources import generator as gen
from idp.sources.county_sis import CountySIS
from idp.sources.fake import feed_app, serve
from idp.sources.sync import sync

from .conftest import TOKEN

NAME = "county-par"


@pytest.fixture
def pupils(app: Flask) -> Iterator[list[gen.SyntheticPerson]]:
    people = [p for p in gen.population(120, seed=99, n_schools=4, today=dt.date(2025, 9, 1)) if p.role == "學生"]
    yield people
    bis = [protection.blind_index(NationalId.parse(p.national_id)) for p in people]
    with app.app_context(), db.engine.begin() as conn:  # the workers' commits are not rolled back
        ids = conn.execute(sa.select(Person.id).where(Person.blind_index.in_(bis))).scalars().all()
        conn.execute(sa.delete(Affiliation).where(Affiliation.person_id.in_(ids)))
        conn.execute(sa.delete(SourceRecord).where(SourceRecord.source == NAME))
        conn.execute(sa.delete(Person).where(Person.id.in_(ids)))
        conn.execute(sa.delete(SourceCursor).where(SourceCursor.source == NAME))


def test_parallel_sync_matches_the_feed_and_resumes(app: Flask, pupils: list[gen.SyntheticPerson]) -> None:
    """R-S2: two workers load every pupil once, a pupil listed twice in a page keeps the later record,
    and a sync stopped after one page resumes from its cursor."""
    raws = [gen.county_raw(p) for p in pupils]
    moved = dict(raws[3], sch_code="649999", class_title="轉入班")
    raws.insert(10, moved)  # the same pupil again in the first page, after a transfer
    fake = feed_app(raws, TOKEN, "sch_code")
    with app.app_context(), serve(fake) as url:
        source = CountySIS(url=url, token=TOKEN, county="par", batch_size=40)
        first = sync(source, max_batches=1, workers=2)
        assert first["batches"] == 1 and first["records"] == 39  # 40 raw records, one pupil twice
        rest = sync(source, workers=2)
        assert first["records"] + rest["records"] == len(pupils)
        persons = db.session.scalar(sa.select(sa.func.count()).select_from(SourceRecord)
                                    .where(SourceRecord.source == NAME))
        assert persons == len(pupils)
        bi = protection.blind_index(NationalId.parse(moved["sid"]))
        person_id = db.session.scalar(sa.select(Person.id).where(Person.blind_index == bi))
        affs = db.session.execute(sa.select(Affiliation.school_code, Affiliation.class_name, Affiliation.status)
                                  .where(Affiliation.person_id == person_id)).all()
        assert [tuple(a) for a in affs] == [("649999", "轉入班", "active")]
        again = sync(source, workers=2)
        assert again["records"] == 0


def test_parallel_sync_reports_unreadable_records(app: Flask, pupils: list[gen.SyntheticPerson],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """R-S1, R-N4: with two workers, unreadable records are counted and logged at their place in the page."""
    raws = [gen.county_raw(p) for p in pupils]
    raws[5] = {**raws[5], "sch_code": None}
    raws[45] = {**raws[45], "sid": "A123456788"}
    with app.app_context(), serve(feed_app(raws, TOKEN, "sch_code")) as url:
        t = sync(CountySIS(url=url, token=TOKEN, county="par", batch_size=40), workers=2)
    assert t["rejected"] == 2 and t["records"] == len(pupils) - 2
    assert "record 5 of the page after cursor '' not read (missing:sch_code)" in caplog.text
    assert "record 5 of the page after cursor '40' not read (national_id:checksum)" in caplog.text
    assert "A123456788" not in caplog.text
