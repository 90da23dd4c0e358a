"""Sync (idempotent, resumable) and the resolver (merge, conflict, month-day, transfer) (issue 3 items 5, 6)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import sqlalchemy as sa
from flask import Flask

from idp.accounts.models import Account
from idp.extensions import db
from idp.identity import protection
from idp.identity import services as identity_services
from idp.identity.models import Affiliation, IdentityConflict, Person, SourceCursor, SourceRecord
from idp.identity.nationalid import NationalId, check_digit
from idp.sources import generator as gen
from idp.sources.county_sis import CountySIS
from idp.sources.k12_registry import K12Registry
from idp.sources.proxy_roster import ProxyRoster, load_roster
from idp.sources.resolver import identity, match
from idp.sources.sync import sync
from idp.sources.webhr import WebHR

from .conftest import TOKEN, Feed


def _count(model: type) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _bi(raw_id: str) -> str:
    return protection.blind_index(NationalId.parse(raw_id))


class Crash(RuntimeError):
    pass


def test_sync_counts_idempotent_and_resumable(app: Flask, feeds: dict[str, Feed]) -> None:
    """R-S1: a sync reports counts; re-running adds nothing; after a crash it resumes from the committed cursor."""
    with app.app_context():
        src = CountySIS(url=feeds["county"].url, token=TOKEN, county="63", batch_size=8)
        with pytest.raises(Crash):
            def boom(counts: dict[str, int]) -> None:
                if _count(SourceCursor) and db.session.get(SourceCursor, "county-63").cursor == "16":
                    raise Crash
            sync(src, on_batch=boom)
        assert db.session.get(SourceCursor, "county-63").cursor == "16"
        assert _count(Person) == 16
        t = sync(src)
        assert t["records"] == 14 and _count(Person) == 30
        again = sync(src)
        assert again["records"] == 0 and _count(Person) == 30 and _count(Affiliation) == 30
        db.session.delete(db.session.get(SourceCursor, "county-63"))
        db.session.commit()
        full = sync(src)
        assert full == {"batches": 4, "records": 30, "new_persons": 0, "conflicts": 0, "rejected": 0, "left": 0}
        assert _count(Person) == 30 and _count(Affiliation) == 30


def test_unreadable_records_do_not_stop_the_sync(app: Flask, feeds: dict[str, Feed],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """R-S1, R-N4: records a feed cannot be read are counted and logged by place, never by number; the
    rest are stored and the cursor moves past them, so the next run does not stumble on them again."""
    from .test_adapters import _broken_county_page

    bad_ids = _broken_county_page(feeds["county"])
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        src = CountySIS(url=feeds["county"].url, token=TOKEN, county="63", batch_size=8)
        t = sync(src)
        assert t == {"batches": 4, "records": 27, "new_persons": 27, "conflicts": 0, "rejected": 3, "left": 0}
        assert _count(Person) == 27 and db.session.get(SourceCursor, "county-63").cursor == "30"
        assert "record 1 of the page after cursor '' not read (national_id:checksum)" in caplog.text
        assert "record 6 of the page after cursor '' not read (malformed)" in caplog.text
        assert sync(src)["rejected"] == 0
    assert not any(i in caplog.text for i in bad_ids + [r["sid"] for r in feeds["county"].raws])


def test_merge_two_sources_one_person(app: Flask, feeds: dict[str, Feed]) -> None:
    """R-S2: a teacher in webHR who also studies in the registry is one person with both affiliations."""
    teacher = feeds["webhr"].raws[0]
    feeds["k12"].raws.append({"idno": teacher["pid"], "cname": teacher["fullName"],
                              "birth_ymd": _ymd(teacher["birthDate"]), "schno": "640001", "grade": 10,
                              "clsno": "101", "clsname": "一年忠班", "enroll_status": "1", "syear": 114, "sem": 1})
    with app.app_context():
        sync(WebHR(url=feeds["webhr"].url, token=TOKEN))
        sync(K12Registry(url=feeds["k12"].url, token=TOKEN))
        ident = identity(_bi(teacher["pid"]))
        assert ident["sources"] == ["k12", "webhr"] and ident["name"] == teacher["fullName"]
        assert {(a.source, a.school_code, a.role) for a in ident["affiliations"]} == {
            ("webhr", teacher["posts"][0]["orgCode"], teacher["posts"][0]["jobType"]), ("k12", "640001", "學生")}
        assert _count(IdentityConflict) == 0


def _ymd(roc: str) -> str:
    y, m, d = roc.split("/")
    return f"{int(y) + 1911}{m}{d}"


def test_conflict_is_reported_not_merged(app: Flask, feeds: dict[str, Feed],
                                         caplog: pytest.LogCaptureFixture) -> None:
    """R-S2: another name and birthday for the same ID open conflicts; the person keeps the first values."""
    caplog.set_level(logging.DEBUG)
    kid = feeds["county"].raws[0]
    feeds["k12"].raws.append({"idno": kid["sid"], "cname": "錯名字", "birth_ymd": "20000101", "schno": "640001",
                              "grade": 10, "clsno": "101", "clsname": "一年忠班", "enroll_status": "1"})
    with app.app_context():
        sync(CountySIS(url=feeds["county"].url, token=TOKEN, county="63"))
        t = sync(K12Registry(url=feeds["k12"].url, token=TOKEN))
        assert t["conflicts"] == 2
        person = db.session.scalar(sa.select(Person).where(Person.blind_index == _bi(kid["sid"])))
        assert person.name == kid["stu_name"] and person.birth_date.isoformat() == kid["birthday"]
        rows = db.session.scalars(sa.select(IdentityConflict).order_by(IdentityConflict.field)).all()
        assert [(c.field, c.status) for c in rows] == [("birthday", "open"), ("name", "open")]
        assert rows[1].values == {"county-63": kid["stu_name"], "k12": "錯名字"}
        sync(K12Registry(url=feeds["k12"].url, token=TOKEN, name="k12"))  # nothing new: no duplicate
        assert _count(IdentityConflict) == 2
    all_ids = [r["sid"] for r in feeds["county"].raws] + [r["idno"] for r in feeds["k12"].raws]
    assert not any(i in caplog.text for i in all_ids)
    assert "conflict" in caplog.text


def test_match_accepts_month_day_sources(app: Flask, people: list[gen.SyntheticPerson]) -> None:
    """R-S3: a person known only from a month-day roster matches name + ID + full birthday typed."""
    kid = next(p for p in people if p.role == "學生")
    with app.app_context():
        load_roster(gen.roster_csv([kid]), "630001", 114, 1, "學生")
        sync(ProxyRoster())
        nid = NationalId.parse(kid.national_id)
        assert match(kid.name, nid, kid.birth_date) is not None
        assert match(kid.name, nid, kid.birth_date.replace(year=1990)) is not None  # month-day only
        assert match(kid.name, nid, kid.birth_date + dt.timedelta(days=1)) is None
        assert match("別人", nid, kid.birth_date) is None
        assert match(kid.name, NationalId.parse("A123456789"), kid.birth_date) is None


def test_transfer_updates_affiliation_keeps_account(app: Flask, feeds: dict[str, Feed]) -> None:
    """R-A2: moving school / going up a level changes the affiliation; the account link stays."""
    kid = feeds["county"].raws[0]
    with app.app_context():
        src = CountySIS(url=feeds["county"].url, token=TOKEN, county="63")
        sync(src)
        account = Account(username="transfer-kid", name=kid["stu_name"])
        db.session.add(account)
        db.session.flush()
        person = db.session.scalar(sa.select(Person).where(Person.blind_index == _bi(kid["sid"])))
        identity_services.link_account(person, account, actor="test")
        db.session.commit()
        moved = {**kid, "sch_code": "649999", "grade": 7, "class_no": "701", "class_title": "七年忠班"}
        feeds["county"].raws.append(moved)
        sync(src)
        db.session.expire_all()
        person = db.session.get(Person, person.id)
        assert person.account_id == account.id
        status = {(a.school_code, a.status) for a in person.affiliations}
        assert status == {(kid["sch_code"], "left"), ("649999", "active")}
        ident = identity(person.blind_index)
        assert [(a.school_code, a.grade, a.class_name) for a in ident["affiliations"]] == [("649999", 7, "七年忠班")]
        assert db.session.scalar(sa.select(SourceRecord.name).where(SourceRecord.blind_index == person.blind_index))


def _teacher(*posts: tuple[str, str | None], active: bool = True):
    from idp.sources.base import AffiliationRecord, PersonRecord

    nid = NationalId.parse("H22233445" + check_digit("H22233445"))
    return PersonRecord("webhr", nid, "林老師", dt.date(1980, 2, 3),
                        affiliations=tuple(AffiliationRecord(code, "教師", title=title, active=active)
                                           for code, title in posts))


def _naive(when: dt.datetime) -> dt.datetime:
    """UTC without tzinfo: SQLite hands timestamps back naive."""
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when


def _affs() -> dict[str, tuple[str | None, str]]:
    return {a.school_code: (a.title, a.status) for a in db.session.scalars(sa.select(Affiliation))}


def test_unchanged_records_are_not_rewritten(app: Flask) -> None:
    """R-S2: a feed repeating yesterday's record rewrites nothing (the mirror and affiliation keep their dates)."""
    from idp.sources.resolver import merge_batch

    with app.app_context():
        first = dt.datetime(2025, 9, 1, tzinfo=dt.UTC)
        merge_batch("webhr", [_teacher(("633401", "導師"))], now=first)
        db.session.commit()
        counts = merge_batch("webhr", [_teacher(("633401", "導師"))], now=first + dt.timedelta(days=1))
        db.session.commit()
        assert counts == {"records": 1, "new_persons": 0, "conflicts": 0, "left": 0}
        assert _naive(db.session.scalar(sa.select(SourceRecord.seen_at))) == _naive(first)
        assert _naive(db.session.scalar(sa.select(Affiliation.last_seen))) == _naive(first)
        merge_batch("webhr", [_teacher(("633401", "校長"))], now=first + dt.timedelta(days=2))
        db.session.commit()
        assert _affs() == {"633401": ("校長", "active")}
        assert _naive(db.session.scalar(sa.select(SourceRecord.seen_at))) == _naive(first + dt.timedelta(days=2))


def test_posts_end_and_come_back(app: Flask) -> None:
    """R-S2: a post the source stops reporting is marked left (kept); one reported inactive is left; a
    post reported again is active again; the other post is untouched throughout."""
    from idp.sources.resolver import merge_batch

    with app.app_context():
        merge_batch("webhr", [_teacher(("633401", "導師"), ("014601", None))])
        db.session.commit()
        assert _affs() == {"633401": ("導師", "active"), "014601": (None, "active")}
        merge_batch("webhr", [_teacher(("633401", "導師"))])
        db.session.commit()
        assert _affs() == {"633401": ("導師", "active"), "014601": (None, "left")}
        merge_batch("webhr", [_teacher(("633401", "導師"), ("014601", None))])
        db.session.commit()
        assert _affs() == {"633401": ("導師", "active"), "014601": (None, "active")}
        merge_batch("webhr", [_teacher(("633401", "導師"), ("014601", None), active=False)])
        db.session.commit()
        assert _affs() == {"633401": ("導師", "left"), "014601": (None, "left")}
        assert _count(Affiliation) == 2 and _count(Person) == 1
