"""Each adapter against its fake feed over HTTP (issue 3 item 5)."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask

from idp.extensions import db
from idp.identity import protection
from idp.identity.models import RosterEntry
from idp.sources import generator as gen
from idp.sources.base import DataSource, SourceError
from idp.sources.county_sis import CountySIS
from idp.sources.k12_registry import K12Registry
from idp.sources.proxy_roster import ProxyRoster, RosterError, load_roster
from idp.sources.sync import build_source
from idp.sources.webhr import WebHR

from .conftest import TOKEN, Feed


def test_county_json_and_csv(feeds: dict[str, Feed]) -> None:
    """R-S1, R-L2: a county instance reads its JSON and its CSV export alike into neutral records, the
    pupil's county account (county_account / 縣市帳號) included and masked when printed."""
    raw = feeds["county"].raws[0]
    for fmt in ("json", "csv"):
        src = CountySIS(url=feeds["county"].url, token=TOKEN, county="63", format=fmt, batch_size=10)
        assert isinstance(src, DataSource) and src.name == "county-63"
        records, cursor, rejected = src.changes("")
        assert len(records) == 10 and cursor == "10" and rejected == ()
        r = records[0]
        assert r.name == raw["stu_name"] and r.birth_date == dt.date.fromisoformat(raw["birthday"])
        a = r.affiliations[0]
        assert (a.school_code, a.role, a.grade, a.class_name, a.academic_year, a.semester) == (
            raw["sch_code"], "學生", raw["grade"], raw["class_title"], 114, 1)
        assert str(r.national_id).endswith(raw["sid"][-2:]) and raw["sid"] not in repr(r)
        assert r.county_account.account == raw["county_account"] and raw["county_account"] not in repr(r)


def test_k12_registry(feeds: dict[str, Feed]) -> None:
    """R-S1: the senior-high registry's own field names map to the same neutral record."""
    raw = feeds["k12"].raws[0]
    src = K12Registry(url=feeds["k12"].url, token=TOKEN)
    records = src.changes("").records
    assert records[0].name == raw["cname"] and records[0].birth_date.strftime("%Y%m%d") == raw["birth_ymd"]
    school = list(src.list_school(raw["schno"]))
    assert school and all(r.affiliations[0].school_code == raw["schno"] for r in school)


def test_webhr_posts(feeds: dict[str, Feed]) -> None:
    """R-S1: webHR educators come with their posts (教師/職員, titles such as 校長)."""
    raw = feeds["webhr"].raws[0]
    raw["posts"].append({"orgCode": "639999", "jobType": "教師", "title": "校長", "onDuty": True})
    src = build_source({"adapter": "idp.sources.webhr.WebHR", "url": feeds["webhr"].url, "token": TOKEN})
    assert isinstance(src, WebHR)
    r = src.changes("")[0][0]
    assert r.birth_date is not None and r.birth_date.year > 1911
    assert ("639999", "教師", "校長") in {(a.school_code, a.role, a.title) for a in r.affiliations}


def test_feed_refuses_wrong_token(feeds: dict[str, Feed]) -> None:
    """R-S1: without the bearer token the feed refuses, and the adapter says so without data."""
    with pytest.raises(SourceError, match="401"):
        K12Registry(url=feeds["k12"].url, token="wrong").changes("")


def test_proxy_roster_month_day_only(app: Flask, people: list[gen.SyntheticPerson]) -> None:
    """R-S3: the proxy platform's roster holds only month-day; the adapter reads it from our tables."""
    kids = [p for p in people if p.role == "學生"][:5]
    with app.app_context():
        load_roster(gen.roster_csv(kids), "630001", 114, 1, "學生")
        stored = " ".join(e.national_id_ciphertext + e.blind_index for e in db.session.query(RosterEntry))
        assert not any(k.national_id in stored for k in kids)
        src = ProxyRoster()
        records, cursor, _ = src.changes("")
        assert len(records) == 5 and records[0].birth_date is None
        assert records[0].birth_month_day == kids[0].birth_date.strftime("%m%d")
        assert records[0].affiliations[0].school_code == "630001"
        assert src.changes(cursor) == ([], cursor, ())
        bi = protection.blind_index(records[1].national_id)
        assert src.lookup(bi)[0].name == kids[1].name
        assert len(list(src.list_school("630001"))) == 5


def test_roster_rejects_bad_rows_by_line(app: Flask) -> None:
    """R-S4: a roster with an invalid number is refused, naming the line and reason, not the number."""
    text = ("姓名,使用者識別碼,生日,年級,班級,班級名稱\n"
            "王小明,A123456789,0304,3,301,三年忠班\n李大華,A123456788,0101,3,301,\n")
    with app.app_context(), pytest.raises(RosterError) as err:
        load_roster(text, "630001", 114, 1, "學生")
    assert err.value.errors == [(3, "checksum")]


def _broken_county_page(feed: Feed) -> list[str]:
    """Three unreadable records among the good ones (positions 1, 4 and 6); returns their IDs."""
    raws = feed.raws
    bad_checksum = raws[1]["sid"][:-1] + str((int(raws[1]["sid"][-1]) + 1) % 10)
    raws[1] = {**raws[1], "sid": bad_checksum}
    raws[4] = {**raws[4], "stu_name": ""}
    raws[6] = {**raws[6], "birthday": "2015-13-45"}
    return [bad_checksum, raws[4]["sid"], raws[6]["sid"]]


def test_unreadable_records_are_reported_by_place_not_content(feeds: dict[str, Feed]) -> None:
    """R-S4, R-N4: a record with a bad ID, a missing name or an impossible birthday is passed over and
    reported by its place in the page and why, never by its number; the others are read."""
    _broken_county_page(feeds["county"])
    page = CountySIS(url=feeds["county"].url, token=TOKEN, county="63", batch_size=10).changes("")
    assert [(r.position, r.reason) for r in page.rejected] == [
        (1, "national_id:checksum"), (4, "missing:stu_name"), (6, "malformed")]
    assert len(page.records) == 7 and page.next_cursor == "10"


def test_feed_answer_that_is_not_a_page(tmp_path, feeds: dict[str, Feed]) -> None:  # type: ignore[no-untyped-def]
    """R-N4: a feed or dropped file that is not a page of records fails with a message, not a traceback."""
    feeds["county"].app.view_functions["changes"] = lambda: ("<html>maintenance</html>", 200)
    with pytest.raises(SourceError, match="not a page of records"):
        CountySIS(url=feeds["county"].url, token=TOKEN, county="63").changes("")
    bad = tmp_path / "feed.json"
    bad.write_text('{"records": "no"}', encoding="utf-8")
    with pytest.raises(SourceError, match="not a list of records"):
        CountySIS(file=str(bad), county="63").changes("")
    with pytest.raises(SourceError, match="cannot read"):
        CountySIS(file=str(tmp_path / "missing.json"), county="63").changes("")


def _county_csv(raws: list[dict]) -> str:
    import csv
    import io

    from idp.sources.county_sis import CSV_COLUMNS

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")  # as Excel writes it
    w.writerow(list(CSV_COLUMNS))
    for r in raws:
        w.writerow(["" if r[f] is None else r[f] for f in CSV_COLUMNS.values()])
    return out.getvalue()


@pytest.mark.parametrize("kind", ["json-bom", "csv-utf8-bom", "csv-big5"])
def test_county_dropped_file(app: Flask, tmp_path, feeds: dict[str, Feed], kind: str) -> None:  # type: ignore[no-untyped-def]
    """R-S1, R-U8: a county that drops its export as a file (JSON, or the CSV as Excel saves it in UTF-8
    with BOM or Big5) is read page by page, its county accounts with it; the cursor names the file's
    version (content hash) and the offset in it."""
    import hashlib

    import orjson

    from idp.sources.base import CountyAccount
    from idp.sources.sync import sync

    raws = feeds["county"].raws
    path = tmp_path / "county-export"
    if kind == "json-bom":
        path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(raws))
    else:
        path.write_bytes(_county_csv(raws).encode("utf-8-sig" if kind == "csv-utf8-bom" else "cp950"))
    version = hashlib.sha256(path.read_bytes()).hexdigest()
    src = CountySIS(file=str(path), county="63", format="json" if kind == "json-bom" else "csv", batch_size=12)
    records, cursor, rejected = src.changes("")
    assert len(records) == 12 and cursor == f"{version}:12" and rejected == ()
    r, raw = records[0], raws[0]
    assert (r.name, r.birth_date.isoformat(), r.affiliations[0].school_code, r.affiliations[0].class_name) == (
        raw["stu_name"], raw["birthday"], raw["sch_code"], raw["class_title"])
    assert r.county_account == CountyAccount("63", raw["county_account"])
    assert raw["county_account"] not in repr(r) and raw["county_account"] not in str(r.county_account)
    assert src.changes(f"{version}:24").next_cursor == f"{version}:30"
    assert src.changes(f"{version}:30") == ([], f"{version}:30", ())
    with app.app_context():
        assert sync(src)["records"] == len(raws)


def test_county_dropped_csv_that_is_not_the_export(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """R-N4: a dropped CSV without the ID column, or in neither UTF-8 nor Big5, is refused with a reason."""
    other = tmp_path / "other.csv"
    other.write_text("name,birthday\n王小明,2015-05-21\n", encoding="utf-8")
    with pytest.raises(SourceError, match="no 身分證號 column"):
        CountySIS(file=str(other), county="63", format="csv").changes("")
    other.write_bytes(b"\xff\xfe\x00\xd8 not text")
    with pytest.raises(SourceError, match="neither UTF-8 nor Big5"):
        CountySIS(file=str(other), county="63", format="csv").changes("")
