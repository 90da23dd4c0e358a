"""The school directory: loaders, the picker endpoints and the CLI (R-S5, issue 3 item 4)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from idp.extensions import db
from idp.schools import loaders
from idp.schools.commands import SAMPLE
from idp.schools.models import County, District, School

MINISTRY_JSON = SAMPLE.with_name("ministry_sample.json")


@pytest.fixture
def directory(app) -> None:
    report = loaders.load_file(SAMPLE.read_text(encoding="utf-8"), "csv")
    db.session.commit()
    assert report.errors == [] and report.added == 41


def test_sample_covers_several_counties_levels_and_authorities(app, directory) -> None:
    """R-S5: the bundled sample spans counties, every level the pickers offer, and all three authorities."""
    assert db.session.scalar(sa.select(sa.func.count()).select_from(County)) >= 8
    levels = set(db.session.scalars(sa.select(School.level).distinct()))
    assert levels == {"國小", "國中", "高中", "高職", "大專", "特殊教育", "實驗教育"}
    assert set(db.session.scalars(sa.select(School.authority).distinct())) == {"county", "k12", "moe"}
    nthu = db.session.get(School, "630301")
    assert (nthu.ownership, nthu.authority, nthu.county.name, nthu.district.name) == ("國立", "k12", "臺北市", "大安區")


def test_ministry_json_shape_is_read(app) -> None:
    """R-S5: the ministry's directory JSON ([01]新北市, schoolsystem spellings, oid) loads into the same model."""
    report = loaders.load_file(MINISTRY_JSON.read_text(encoding="utf-8"), "json")
    assert (report.added, report.errors) == (6, [])
    banqiao = db.session.get(School, "014601")
    assert (banqiao.county_code, banqiao.county.name, banqiao.district.name, banqiao.level) == \
        ("01", "新北市", "板橋區", "國小")
    assert banqiao.oid == "2.16.886.111.90010.10001.14601" and banqiao.authority == "county"
    assert db.session.get(School, "633401").level == "高中"
    assert db.session.get(School, "660401").level == "高職" and db.session.get(School, "660401").authority == "k12"
    assert db.session.get(School, "011401").authority == "county"  # private, in a municipality
    assert db.session.get(School, "630001").authority == "moe"
    wrapped = loaders.load_file(json.dumps({"data": json.loads(MINISTRY_JSON.read_text(encoding="utf-8"))}), "json")
    assert wrapped.unchanged == 6


def test_bad_rows_are_reported_by_line_and_good_rows_still_load(app, directory) -> None:
    """R-S5: each bad line is named with its reason; the good ones load; nothing stored is removed."""
    text = ("學校代碼,學校名稱,縣市代碼,縣市,鄉鎮市區,學制\n"
            "014601,新北市板橋區板橋國民小學（新名）,01,新北市,板橋區,國小\n"
            "12345,太短國小,01,新北市,板橋區,國小\n"
            "019999,,01,新北市,板橋區,國小\n"
            "019998,某某國小,1,新北市,板橋區,國小\n"
            "019997,某某幼兒園,01,新北市,板橋區,幼兒園\n"
            "019996,新北市板橋區新設國民小學,01,新北市,板橋區,國民小學\n"
            "019996,重複國小,01,新北市,板橋區,國小\n")
    report = loaders.load_file(text, "csv")
    db.session.commit()
    assert (report.added, report.updated) == (1, 1)
    assert [line for line, _ in report.errors] == [3, 4, 5, 6, 8]
    reasons = dict(report.errors)
    assert "6 digits" in reasons[3] and "name is empty" in reasons[4] and "two digits" in reasons[5]
    assert "unknown school level" in reasons[6] and "appears again" in reasons[8]
    assert db.session.get(School, "014601").name.endswith("（新名）")
    assert db.session.get(School, "633601") is not None  # not in the file, still there
    assert db.session.scalar(sa.select(sa.func.count()).select_from(School)) == 42


def test_an_unreadable_file_is_refused_whole(app) -> None:
    """R-S5: a file without the needed columns, or not JSON, is refused with the reason."""
    with pytest.raises(loaders.DirectoryError, match="missing column"):
        loaders.load_file("foo,bar\n1,2\n", "csv")
    with pytest.raises(loaders.DirectoryError, match="not JSON"):
        loaders.load_file("{oops", "json")
    with pytest.raises(loaders.DirectoryError, match="list of schools"):
        loaders.load_file('{"count": 3}', "json")


def test_pickers_cascade_county_district_level_school(app, client, directory) -> None:
    """R-S5, R-C2: counties → districts → levels → schools, each narrowing the next."""
    counties = client.get("/api/schools/counties")
    assert counties.status_code == 200 and "max-age" in counties.headers["Cache-Control"]
    assert {"code": "15", "name": "花蓮縣"} in counties.get_json()["counties"]
    districts = client.get("/api/schools/districts?county=15").get_json()["districts"]
    hualien = next(d for d in districts if d["name"] == "花蓮市")
    assert {d["name"] for d in districts} == {"花蓮市", "秀林鄉", "吉安鄉"}
    levels = client.get(f"/api/schools/levels?county=15&district={hualien['id']}").get_json()["levels"]
    assert levels == ["國小", "高中", "特殊教育"]
    schools = client.get(f"/api/schools?county=15&district={hualien['id']}&level=國小").get_json()["schools"]
    assert schools == [{"code": "153601", "name": "花蓮縣花蓮市明義國民小學", "level": "國小"}]
    one = client.get("/api/schools/150301").get_json()
    assert one["authority_name"] == "教育部國民及學前教育署" and one["county"]["name"] == "花蓮縣"


def test_closed_schools_leave_the_pickers_but_stay_readable(app, client, directory) -> None:
    """R-S5: a closed school is kept (old affiliations name it) but no longer offered."""
    db.session.get(School, "153602").active = False
    db.session.commit()
    schools = client.get("/api/schools?county=15&level=國小").get_json()["schools"]
    assert [s["code"] for s in schools] == ["153601"]
    assert client.get("/api/schools/153602").get_json()["active"] is False


@pytest.mark.parametrize(("path", "status"), [
    ("/api/schools/districts", 400), ("/api/schools/districts?county=new", 400),
    ("/api/schools?county=15&level=幼兒園", 400), ("/api/schools/levels?county=15&district=x", 400),
    ("/api/schools/999999", 404), ("/api/schools/<script>", 404),
    ("/api/schools?county=15&district=99999999999999999999", 400),
])
def test_bad_picker_requests_get_a_json_error(app, client, directory, path, status) -> None:
    """R-S5: a wrong parameter is a JSON 4xx naming it, never a 500."""
    resp = client.get(path)
    assert resp.status_code == status and resp.is_json and resp.get_json()["error"]


def test_cli_loads_the_sample_and_a_bad_file(app, tmp_path) -> None:
    """R-S5: ``flask schools load`` reports counts and skipped lines; an unreadable file fails cleanly."""
    cli = app.test_cli_runner()
    result = cli.invoke(args=["schools", "load", "--sample"])
    assert result.exit_code == 0 and "41 added" in result.output
    again = cli.invoke(args=["schools", "load", str(MINISTRY_JSON)])
    assert again.exit_code == 0 and "6 unchanged" in again.output
    bad = tmp_path / "schools.csv"
    bad.write_text("name\nx\n", encoding="utf-8")
    failed = cli.invoke(args=["schools", "load", str(bad)])
    assert failed.exit_code != 0 and "missing column" in failed.output and "Traceback" not in failed.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(District)) > 0
