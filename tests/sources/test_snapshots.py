"""County accounts kept as keyed hashes (R-L2) and dropped files as snapshots: leavers are seen (issue 12 item 7)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask

from idp.extensions import db
from idp.identity import protection
from idp.identity import services as identity
from idp.identity.models import Affiliation, Person, SourceCursor, SourceRecord
from idp.identity.nationalid import NationalId
from idp.security import audit
from idp.security.models import AuditEvent
from idp.sources import generator as gen
from idp.sources.base import AffiliationRecord, CountyAccount, PersonRecord, SourceError
from idp.sources.county_sis import CountySIS
from idp.sources.resolver import merge_batch
from idp.sources.sync import sync

from .conftest import TOKEN, Feed
from .test_adapters import _county_csv


def _drop(path: Path, raws: list[dict[str, Any]], kind: str = "json") -> None:
    """Write a county export as the county's tools would: JSON, or the CSV in UTF-8 (BOM) or Big5."""
    if kind == "json":
        path.write_bytes(orjson.dumps(raws))
    else:
        path.write_bytes(_county_csv(raws).encode("cp950" if kind == "csv-big5" else "utf-8-sig"))


def _source(path: Path, kind: str = "json", **options: Any) -> CountySIS:
    return CountySIS(file=str(path), county="63", format="json" if kind == "json" else "csv", batch_size=8,
                     **options)


def _current_schools(raw: dict[str, Any]) -> list[str]:
    """The schools a relying party's eduinfo lists for this pupil."""
    return [t["schoolid"] for t in identity.eduinfo(identity.find_person(raw["sid"]))["titles"]]


def _left_audits() -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event == audit.SOURCE_LEFT)))


def _everything_stored() -> str:
    """Every row of every table, as text, for looking for a value that must never be stored in clear."""
    return "\n".join(repr(tuple(row)) for table in db.metadata.sorted_tables
                     for row in db.session.execute(sa.select(table))).casefold()


def test_county_account_index_is_normalised_and_its_own_domain(app: Flask) -> None:
    """R-L2: a county account is hashed the same whatever its case or width, differently per county, and
    never as the national ID's blind index would be."""
    with app.app_context():
        index = protection.county_account_index("01", "ntpc178352")
        assert len(index) == 64 and "ntpc" not in index
        assert protection.county_account_index("01", " NTPC178352 ") == index
        assert protection.county_account_index("01", "ｎｔｐｃ１７８３５２") == index
        assert protection.county_account_index("63", "ntpc178352") != index
        nid = NationalId.parse("A123456789")
        assert protection.county_account_index("", "A123456789") != protection.blind_index(nid)


@pytest.mark.parametrize("kind", ["json", "csv-utf8", "csv-big5"])
def test_county_account_is_kept_only_hashed_and_finds_the_pupil(app: Flask, tmp_path: Path, feeds: dict[str, Feed],
                                                                kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """R-L2, R-S1: the county account of a county export (county_account in JSON, 縣市帳號 in the CSV, UTF-8
    or Big5) finds its pupil through the look-up, in any case or width, only at that county; the clear
    account is nowhere in the database or the logs."""
    caplog.set_level(logging.DEBUG)
    raws = feeds["county"].raws
    path = tmp_path / "county-63.export"
    _drop(path, raws, kind)
    with app.app_context():
        assert sync(_source(path, kind))["records"] == len(raws)
        for raw in raws[:3]:
            person = identity.find_person(raw["sid"])
            assert identity.person_by_county_account("63", raw["county_account"]) == person
            assert identity.person_by_county_account("63", raw["county_account"].upper()) == person
            assert identity.person_by_county_account("01", raw["county_account"]) is None
        assert identity.person_by_county_account("63", "tp000000x") is None
        assert identity.person_by_county_account("63", "  ") is None
        stored = _everything_stored()
        assert not [r for r in raws if r["county_account"].casefold() in stored]
    assert not [r for r in raws if r["county_account"] in caplog.text]


def _pupil(raw_id: str, account: str | None, active: bool = True, school: str = "633401") -> PersonRecord:
    aff = AffiliationRecord(school, "學生", grade=3, class_no="301", class_name="三年忠班", active=active)
    return PersonRecord("county-63", NationalId.parse(raw_id), "王小明", affiliations=(aff,),
                        county_account=CountyAccount("63", account) if account else None)


def test_county_account_link_ends_with_the_pupil_or_the_account(app: Flask, people: list[gen.SyntheticPerson]
                                                                ) -> None:
    """R-L2: the look-up finds a pupil while the county reports them at school with that account; a 離校
    record or a record without the account ends it; an account two pupils share finds nobody."""
    a, b = (p.national_id for p in people[:2])
    with app.app_context():
        merge_batch("county-63", [_pupil(a, "tp123456")])
        pupil = identity.find_person(a)
        assert identity.person_by_county_account("63", "TP123456") == pupil
        merge_batch("county-63", [_pupil(a, "tp123456", active=False)])
        assert identity.person_by_county_account("63", "tp123456") is None
        merge_batch("county-63", [_pupil(a, "tp123456")])
        assert identity.person_by_county_account("63", "tp123456") == pupil
        merge_batch("county-63", [_pupil(a, None)])
        assert identity.person_by_county_account("63", "tp123456") is None
        merge_batch("county-63", [_pupil(a, "tp123456"), _pupil(b, "tp123456")])
        assert identity.person_by_county_account("63", "tp123456") is None


def test_changed_file_with_the_same_number_of_rows_is_read(app: Flask, tmp_path: Path,
                                                           feeds: dict[str, Feed]) -> None:
    """R-S1: a county's new export with as many rows as the last one (a pupil changed class) is read
    whole and the change reaches the person; before, the row offset said "0 records"."""
    raws = feeds["county"].raws
    path = tmp_path / "county-63.json"
    _drop(path, raws)
    with app.app_context():
        src = _source(path)
        sync(src)
        raws[4] = {**raws[4], "class_no": "909", "class_title": "九年九班"}
        _drop(path, raws)
        t = sync(src)
        assert t["records"] == len(raws) and t["left"] == 0
        person = identity.find_person(raws[4]["sid"])
        assert identity.eduinfo(person)["classinfo"][0]["classtitle"] == "九年九班"


def test_pupils_who_left_or_are_missing_lose_the_county_affiliation(app: Flask, tmp_path: Path,
                                                                    feeds: dict[str, Feed]) -> None:
    """R-S2, R-L2: in the county's next export one pupil is 離校 and one is missing: both lose that
    county's affiliation (eduinfo no longer lists the school) and their county account; the sync counts
    two leavers and leaves one audit row saying so; the missing pupil listed again is current again."""
    raws = feeds["county"].raws
    path = tmp_path / "county-63.json"
    _drop(path, raws)
    with app.app_context():
        src = _source(path)
        sync(src)
        gone, missing, stays = raws[0], raws[1], raws[2]
        assert _current_schools(gone) == [gone["sch_code"]]
        _drop(path, [{**gone, "status": "離校"}, *raws[2:]])
        t = sync(src)
        assert t["left"] == 2 and t["records"] == len(raws) - 1
        for raw in (gone, missing):
            assert _current_schools(raw) == []
            assert identity.person_by_county_account("63", raw["county_account"]) is None
            statuses = db.session.scalars(sa.select(Affiliation.status).where(
                Affiliation.person_id == identity.find_person(raw["sid"]).id)).all()
            assert statuses == ["left"]  # kept, marked left: never deleted
        assert _current_schools(stays) == [stays["sch_code"]]
        assert identity.person_by_county_account("63", stays["county_account"]) is not None
        [row] = _left_audits()
        assert row.actor == "sync" and row.data["source"] == "county-63" and row.data["left"] == 2
        assert row.data["snapshot_absent"] == 1 and row.data["snapshot_listed"] == len(raws) - 1
        assert not any(r["sid"] in repr(row.data) for r in raws)

        _drop(path, raws)  # the missing pupil is back (and the 離校 one re-enrolled)
        t = sync(src)
        assert t["left"] == 0
        assert _current_schools(missing) == [missing["sch_code"]]
        assert identity.person_by_county_account("63", missing["county_account"]) is not None
        assert len(_left_audits()) == 1


def test_unchanged_file_reads_nothing(app: Flask, tmp_path: Path, feeds: dict[str, Feed]) -> None:
    """R-S1: the same export dropped again (rewritten, touched) reads nothing and marks nobody; a cursor
    from before snapshots (a bare offset) has the file read whole once."""
    raws = feeds["county"].raws
    path = tmp_path / "county-63.json"
    _drop(path, raws)
    with app.app_context():
        src = _source(path)
        assert sync(src)["records"] == len(raws)
        _drop(path, raws)
        os.utime(path, (1, 1))
        again = sync(_source(path))
        assert again["batches"] == 0 and again["records"] == 0 and again["left"] == 0
        db.session.get(SourceCursor, "county-63").cursor = str(len(raws))
        db.session.commit()
        assert sync(src)["records"] == len(raws) and sync(src)["records"] == 0
        assert _left_audits() == []


def test_sync_stopped_in_the_middle_of_a_file_applies_the_snapshot_when_done(app: Flask, tmp_path: Path,
                                                                           feeds: dict[str, Feed]) -> None:
    """R-S2: a sync stopped after one page of a new export marks nobody yet; the next one finishes the
    file and then marks the missing pupil; a record passed over for a missing name is no leaver."""
    raws = feeds["county"].raws
    path = tmp_path / "county-63.json"
    _drop(path, raws)
    with app.app_context():
        src = _source(path)
        sync(src)
        unnamed = {**raws[20], "stu_name": ""}
        _drop(path, [*raws[1:20], unnamed, *raws[21:]])
        first = sync(src, max_batches=1)
        assert first["left"] == 0 and _current_schools(raws[0]) == [raws[0]["sch_code"]]
        rest = sync(src)
        assert rest["left"] == 1 and rest["rejected"] == 1
        assert _current_schools(raws[0]) == [] and _current_schools(raws[20]) == [raws[20]["sch_code"]]


HEADER_ONLY = "身分證號,姓名,生日,學校代碼,年級,班級,班級名稱,狀態,學年度,學期,縣市帳號\r\n".encode("cp950")


@pytest.mark.parametrize(("content", "message"), [
    (b"", "holds no records"),
    (b"[]", "holds no records"),
    (HEADER_ONLY, "holds no records"),
    (b"cut", "not JSON"),
    (None, "would mark 27 of 30 people as left"),
])
def test_broken_or_short_file_marks_nobody_as_left(app: Flask, tmp_path: Path, feeds: dict[str, Feed],
                                                   content: bytes | None, message: str) -> None:
    """R-N4: an empty export, one that does not parse (cut short mid-record) or one cut at a line that
    would make most pupils leavers at once is refused with a reason, and everybody stays current."""
    raws = feeds["county"].raws
    path = tmp_path / "county-63.export"
    _drop(path, raws, "csv-big5")
    with app.app_context():
        src = _source(path, "csv-big5")
        sync(src)
        if content is None:
            _drop(path, raws[:3], "csv-big5")
        elif content == b"cut":
            path.write_bytes(orjson.dumps(raws)[:-40])
            src = _source(path)
        else:
            path.write_bytes(content)
        with pytest.raises(SourceError, match=message) as refused:
            sync(src)
        assert "nobody is marked as left" in str(refused.value) or content == b"cut"
        db.session.rollback()
        assert all(_current_schools(r) == [r["sch_code"]] for r in raws)
        assert _left_audits() == []


def test_a_share_of_leavers_allowed_by_the_source_option(app: Flask, tmp_path: Path, feeds: dict[str, Feed]) -> None:
    """R-N4: an operator who checked a big change (a whole school gone to another county) raises
    snapshot_max_left for the source, and the snapshot is applied; a nonsense share is refused."""
    raws = feeds["county"].raws
    path = tmp_path / "county-63.json"
    _drop(path, raws)
    with app.app_context():
        sync(_source(path))
        _drop(path, raws[:3])
        assert sync(_source(path, snapshot_max_left=1.0))["left"] == len(raws) - 3
    with pytest.raises(SourceError, match="snapshot_max_left must be"):
        _source(path, snapshot_max_left=0)


def test_http_feed_keeps_its_cursor_and_reports_leavers(app: Flask, feeds: dict[str, Feed]) -> None:
    """R-S1, R-S2: an HTTP feed is a change feed: a page without a pupil leaves nobody, and only a 離校
    record makes one a leaver (counted and audited)."""
    feed = feeds["county"]
    with app.app_context():
        src = CountySIS(url=feed.url, token=TOKEN, county="63", batch_size=8)
        sync(src)
        assert db.session.get(SourceCursor, "county-63").cursor == str(len(feed.raws))
        feed.raws.append({**feed.raws[3], "class_title": "轉班"})
        t = sync(src)
        assert (t["records"], t["left"]) == (1, 0) and _current_schools(feed.raws[0]) == [feed.raws[0]["sch_code"]]
        assert db.session.get(SourceCursor, "county-63").cursor == str(len(feed.raws))
        feed.raws.append({**feed.raws[0], "status": "離校"})
        assert sync(src)["left"] == 1 and _current_schools(feed.raws[0]) == []
        [row] = _left_audits()
        assert row.data["left"] == 1 and "snapshot" not in row.data


@pytest.fixture
def with_file_source(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import dataclasses

    path = tmp_path / "county-63.json"
    toml = tmp_path / "sources.toml"
    toml.write_text(f'[[source]]\nname = "county-63"\nadapter = "idp.sources.county_sis.CountySIS"\n'
                    f'county = "63"\nfile = "{path}"\n', encoding="utf-8")
    settings = dataclasses.replace(app.extensions["idp.settings"], sources_file=str(toml))
    monkeypatch.setitem(app.extensions, "idp.settings", settings)
    yield path


def test_sync_command_says_who_left_and_refuses_an_empty_file(app: Flask, with_file_source: Path,
                                                             feeds: dict[str, Feed]) -> None:
    """R-N4, R-S2: `flask sources sync` prints how many left with a new export, and refuses an empty
    one with a one-line reason that says nobody was marked as left."""
    raws = feeds["county"].raws
    runner = app.test_cli_runner()
    _drop(with_file_source, raws)
    assert f"county-63: {len(raws)} records" in runner.invoke(args=["sources", "sync"]).output
    _drop(with_file_source, raws[2:])
    result = runner.invoke(args=["sources", "sync", "county-63"])
    assert result.exit_code == 0 and ", 2 left" in result.output, result.output
    with_file_source.write_bytes(b"")
    empty = runner.invoke(args=["sources", "sync", "county-63"])
    assert empty.exit_code == 1 and "holds no records" in empty.output and "nobody is marked as left" in empty.output
    assert "Traceback" not in empty.output


def test_demo_pupils_have_their_county_accounts(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """R-L2: after the demo's feeds are loaded, the demo student 王小明 and the applicant 林小華 are found by
    their 新北市 accounts (ntpc178352, ntpc717075: what the demo county provider signs them in as), and
    no account reaches the log."""
    from idp.demo.commands import _demo_people
    from idp.sources.fake import load_demo_people

    caplog.set_level(logging.DEBUG)
    with app.app_context():
        totals = load_demo_people(20, seed=1, extra=_demo_people(), schools=[("01", "014601"), ("63", "633401")])
        assert "county-01" in totals and "county-demo" not in totals
        assert identity.person_by_county_account("01", "ntpc178352") == identity.find_person("A123456789")
        assert identity.person_by_county_account("01", "NTPC717075") == identity.find_person("H120465130")
        assert identity.person_by_county_account("63", "ntpc178352") is None
    assert "ntpc178352" not in caplog.text and "ntpc717075" not in caplog.text


# -- the parallel path (PostgreSQL): its workers commit outside the test's transaction ------------------------
PAR = "county-snap-par"


@pytest.fixture(scope="module")
def pupils(app: Flask) -> Iterator[list[gen.SyntheticPerson]]:
    """Removed after the module: the test's own transaction (the parent's writes, rows the workers
    committed) must have been rolled back first, or the clean-up would wait for its row locks."""
    import datetime as dt

    people = [p for p in gen.population(80, seed=98, n_schools=3, today=dt.date(2025, 9, 1)) if p.role == "學生"]
    yield people
    with app.app_context(), db.engine.begin() as conn:
        bis = [protection.blind_index(NationalId.parse(p.national_id)) for p in people]
        ids = conn.execute(sa.select(Person.id).where(Person.blind_index.in_(bis))).scalars().all()
        conn.execute(sa.delete(Affiliation).where(Affiliation.person_id.in_(ids)))
        conn.execute(sa.delete(SourceRecord).where(SourceRecord.source == PAR))
        conn.execute(sa.delete(Person).where(Person.id.in_(ids)))
        conn.execute(sa.delete(SourceCursor).where(SourceCursor.source == PAR))


def test_parallel_sync_of_a_snapshot(app: Flask, tmp_path: Path, pupils: list[gen.SyntheticPerson]) -> None:
    """R-S2: split over two worker processes, a new export is read whole and its missing pupils leave
    once every page is stored; the county look-up follows."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("worker processes are for PostgreSQL; SQLite syncs in one process (tested above)")
    raws = [gen.county_raw(p) for p in pupils]
    path = tmp_path / "county.json"
    _drop(path, raws)
    with app.app_context():
        src = CountySIS(file=str(path), county="63", name=PAR, batch_size=20)
        assert sync(src, workers=2)["records"] == len(raws)
        _drop(path, raws[3:])
        t = sync(src, workers=2)
        assert (t["records"], t["left"]) == (len(raws) - 3, 3)
        assert _current_schools(raws[0]) == [] and _current_schools(raws[3]) == [raws[3]["sch_code"]]
        assert identity.person_by_county_account("63", raws[0]["county_account"]) is None
        assert identity.person_by_county_account("63", raws[3]["county_account"]) is not None
        assert sync(src, workers=2)["batches"] == 0
