"""``flask sources sync`` / ``load-roster`` and ``flask identity rotate``, conflict resolution (items 2, 5, 6)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from idp.extensions import db
from idp.identity import protection
from idp.identity.models import IdentityConflict, Person, RosterEntry, RosterUpload
from idp.identity.protection import Protector
from idp.identity.services import close_conflict, find_person, rotate_keys
from idp.sources import generator as gen
from idp.sources.resolver import merge_batch

from .conftest import TOKEN, Feed


@pytest.fixture
def with_sources(app: Flask, tmp_path: Path, feeds: dict[str, Feed], monkeypatch: pytest.MonkeyPatch):
    toml = tmp_path / "sources.toml"
    toml.write_text(f'[[source]]\nname = "k12"\nadapter = "idp.sources.k12_registry.K12Registry"\n'
                    f'url = "{feeds["k12"].url}"\ntoken_env = "TEST_K12_TOKEN"\n', encoding="utf-8")
    monkeypatch.setenv("TEST_K12_TOKEN", TOKEN)
    original = app.extensions["idp.settings"]
    app.extensions["idp.settings"] = dataclasses.replace(original, sources_file=str(toml))
    yield feeds
    app.extensions["idp.settings"] = original


def test_sync_command_prints_counts(app: Flask, with_sources: dict[str, Feed]) -> None:
    """R-S1: `flask sources sync k12` pulls the feed and prints counts; a second run finds nothing new."""
    runner = app.test_cli_runner()
    n = len(with_sources["k12"].raws)
    result = runner.invoke(args=["sources", "sync", "k12"])
    assert result.exit_code == 0, result.output
    assert f"k12: {n} records" in result.output and f"{n} new persons" in result.output
    again = runner.invoke(args=["sources", "sync"])
    assert "k12: 0 records" in again.output
    assert not any(r["idno"] in result.output + again.output for r in with_sources["k12"].raws)
    bad = runner.invoke(args=["sources", "sync", "nope"])
    assert bad.exit_code != 0 and "unknown source" in bad.output


def test_sync_command_when_the_feed_fails(app: Flask, with_sources: dict[str, Feed]) -> None:
    """R-N4: a feed that is down or answers nonsense gives a one-line reason and a failing exit code, and
    what was stored stays; unreadable records are counted in the output."""
    runner = app.test_cli_runner()
    feed = with_sources["k12"]
    feed.raws[2] = {**feed.raws[2], "idno": "Z1"}
    ok = runner.invoke(args=["sources", "sync", "k12"])
    assert ok.exit_code == 0 and "1 records not read (see the log)" in ok.output
    stored = db.session.scalar(sa.select(sa.func.count()).select_from(Person))
    feed.app.view_functions["changes"] = lambda: ("upstream down", 502)
    failed = runner.invoke(args=["sources", "sync", "k12"])
    assert failed.exit_code == 1 and "HTTP 502" in failed.output and "Traceback" not in failed.output
    assert "not synced: k12" in failed.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Person)) == stored


@pytest.mark.parametrize(("toml", "message"), [
    (None, "no sources configured: set sources_file"),
    ("missing", "cannot be read (FileNotFoundError)"),
    ("[[source]\n", "not valid TOML"),
    ('[[source]]\nname = "x"\nadapter = "idp.sources.nope.X"\n', "source x: no adapter idp.sources.nope.X"),
    ('[[source]]\nname = "x"\n', "source x: 'adapter' must be a dotted path"),
    ('[[source]]\nname = "x"\nadapter = "idp.sources.proxy_roster.ProxyRoster"\n' * 2, "two sources are named 'x'"),
])
def test_sync_command_with_a_bad_sources_file(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              toml: str | None, message: str) -> None:
    """R-N4: a missing, malformed or wrong sources file is named with what is wrong, not a traceback."""
    path = tmp_path / "sources.toml"
    if toml not in (None, "missing"):
        path.write_text(toml, encoding="utf-8")
    settings = dataclasses.replace(app.extensions["idp.settings"], sources_file="" if toml is None else str(path))
    monkeypatch.setitem(app.extensions, "idp.settings", settings)
    result = app.test_cli_runner().invoke(args=["sources", "sync"])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_load_roster_command(app: Flask, tmp_path: Path, people: list[gen.SyntheticPerson]) -> None:
    """R-S3: `flask sources load-roster` stores a roster; a bad row is named by line, never by number."""
    kids = [p for p in people if p.role == "學生"][:3]
    f = tmp_path / "roster.csv"
    f.write_text(gen.roster_csv(kids), encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["sources", "load-roster", str(f), "--school", "630001", "--year", "114",
                                 "--semester", "1"])
    assert result.exit_code == 0, result.output
    assert "3 rows" in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RosterUpload)) == 1
    f.write_text("姓名,使用者識別碼,生日,年級,班級,班級名稱\n王,A123456788,0101,1,101,\n", encoding="utf-8")
    bad = runner.invoke(args=["sources", "load-roster", str(f), "--school", "630001", "--year", "114",
                              "--semester", "1"])
    assert bad.exit_code != 0 and "line 2: checksum" in bad.output and "A123456788" not in bad.output


def test_load_roster_command_reads_big5(app: Flask, tmp_path: Path, people: list[gen.SyntheticPerson]) -> None:
    """R-U8: a roster saved by Excel in Big5 loads like a UTF-8 one; a file that is neither is refused."""
    kids = [p for p in people if p.role == "學生"][:2]
    f = tmp_path / "roster.csv"
    f.write_bytes(gen.roster_csv(kids).encode("cp950"))
    runner = app.test_cli_runner()
    args = ["sources", "load-roster", str(f), "--school", "630001", "--year", "114", "--semester", "1"]
    result = runner.invoke(args=args)
    assert result.exit_code == 0 and "2 rows" in result.output, result.output
    assert {e.name for e in db.session.scalars(sa.select(RosterEntry))} == {k.name for k in kids}
    f.write_bytes(b"\xff\xfe\x00\xd8 not text")
    refused = runner.invoke(args=args)
    assert refused.exit_code == 1 and "neither UTF-8 nor Big5" in refused.output


def test_operator_resolves_conflict(app: Flask, people: list[gen.SyntheticPerson]) -> None:
    """R-S2: an operator sees the open conflict and resolves it with the confirmed name."""
    from idp.identity.nationalid import NationalId
    from idp.sources.base import PersonRecord

    p = people[0]
    nid = NationalId.parse(p.national_id)
    with app.app_context():
        merge_batch("a", [PersonRecord("a", nid, p.name, p.birth_date)])
        merge_batch("b", [PersonRecord("b", nid, "另一名", p.birth_date)])
        conflict = db.session.scalar(sa.select(IdentityConflict))
        assert conflict.status == "open" and conflict.field == "name"
        close_conflict(conflict.id, "operator1", "checked household register", name="另一名")
        assert find_person(p.national_id.lower()).name == "另一名"
        assert conflict.status == "resolved" and conflict.resolved_by == "operator1"


def test_resolved_conflict_stays_resolved_until_a_source_changes(app: Flask, people: list[gen.SyntheticPerson]) -> None:
    """R-S2: the next day's feeds repeating the same disagreement do not reopen a resolved conflict or undo
    the operator's choice; a source that then changes what it says opens a new one."""
    from idp.identity.nationalid import NationalId
    from idp.sources.base import PersonRecord

    p = people[0]
    nid = NationalId.parse(p.national_id)
    a, b = PersonRecord("a", nid, p.name, p.birth_date), PersonRecord("b", nid, "另一名", p.birth_date)
    with app.app_context():
        merge_batch("a", [a])
        merge_batch("b", [b])
        conflict = db.session.scalar(sa.select(IdentityConflict))
        close_conflict(conflict.id, "operator1", "checked household register", name="另一名")
        db.session.commit()
        assert merge_batch("a", [a]) == {"records": 1, "new_persons": 0, "conflicts": 0, "left": 0}
        assert merge_batch("b", [b]) == {"records": 1, "new_persons": 0, "conflicts": 0, "left": 0}
        assert [c.status for c in db.session.scalars(sa.select(IdentityConflict))] == ["resolved"]
        assert find_person(p.national_id).name == "另一名"
        assert merge_batch("a", [a._replace(name="第三名")])["conflicts"] == 1
        assert sorted(c.status for c in db.session.scalars(sa.select(IdentityConflict))) == ["open", "resolved"]
        assert find_person(p.national_id).name == "另一名"


def test_rotate_keys(app: Flask, people: list[gen.SyntheticPerson]) -> None:
    """R-S4: after adding a new key, `rotate` re-encrypts rows; they still decrypt to the same number."""
    from idp.identity.nationalid import NationalId
    from idp.sources.base import PersonRecord

    nid = NationalId.parse(people[1].national_id)
    with app.app_context():
        merge_batch("a", [PersonRecord("a", nid, people[1].name, people[1].birth_date)])
        old = protection.protector()
        new = Protector(old.index_key, {**old.keys, "k2": b"2" * 32}, "k2")
        app.extensions["idp.identity.protector"] = new
        try:
            assert rotate_keys() == 1 and rotate_keys() == 0
            person = db.session.scalar(sa.select(Person))
            assert person.national_id_ciphertext.startswith("k2:")
            assert protection.decrypt(person.national_id_ciphertext) == nid
        finally:
            app.extensions["idp.identity.protector"] = old


def test_demo_load_through_fake_feeds(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """R-S1, R-S4: the demo loads people from the three fake feeds over HTTP through the real adapters;
    no number it used appears in the logs (werkzeug's request lines included) or the output."""
    import logging

    caplog.set_level(logging.DEBUG)
    result = app.test_cli_runner().invoke(args=["sources", "demo-load", "--persons", "40"])
    assert result.exit_code == 0, result.output
    assert "county-63: " in result.output and "k12: " in result.output and "webhr: " in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Person)) == 40
    used = [p.national_id for p in gen.population(40, seed=1)]
    assert caplog.text and not any(i in caplog.text or i in result.output for i in used)
