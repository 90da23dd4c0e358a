"""``flask demo load`` (issue 2 item 11, R-N1): demo accounts and the demo relying party, idempotent."""

from __future__ import annotations

import dataclasses
import stat

import pytest

from idp.accounts.models import Account
from idp.extensions import db
from idp.oidc.models import Client


@pytest.fixture
def demo_settings(app, monkeypatch):
    """The app with demo data switched on (the testing configuration has it off)."""

    def use(**changes):
        settings = dataclasses.replace(app.extensions["idp.settings"], **changes)
        monkeypatch.setitem(app.extensions, "idp.settings", settings)

    use(demo_data=True)
    return use


def _env(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and line[0] != "#")


def test_demo_load_creates_people_and_client(app, demo_settings, tmp_path) -> None:
    """R-N1: demo load creates the student, teacher and operator and registers the demo app with a working secret."""
    env_file = tmp_path / "demo_rp.env"
    result = app.test_cli_runner().invoke(args=["demo", "load", "--env-file", str(env_file)])
    assert result.exit_code == 0, result.output
    accounts = {a.username: a for a in db.session.execute(db.select(Account)).scalars()}
    assert accounts["student"].kind == "cloud" and accounts["student"].name == "王小明"
    assert accounts["teacher"].kind == "cloud" and accounts["teacher"].name == "陳美玲"
    assert accounts["operator"].is_operator
    client = db.session.execute(db.select(Client).filter_by(client_id="demo-rp")).scalar_one()
    assert client.redirect_uris == ["http://127.0.0.1:5001/callback"]
    assert client.post_logout_redirect_uris == ["http://127.0.0.1:5001/"]
    assert client.backchannel_logout_uri == "http://127.0.0.1:5001/backchannel-logout"
    values = _env(env_file)
    assert values["DEMO_RP_CLIENT_ID"] == "demo-rp"
    assert client.check_client_secret(values["DEMO_RP_CLIENT_SECRET"])
    assert values["DEMO_RP_CLIENT_SECRET"] not in result.output  # the secret is never printed
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_demo_load_twice_changes_nothing(app, demo_settings, tmp_path) -> None:
    """R-N1: a second demo load keeps the accounts, the client and its secret (make run runs it every time)."""
    env_file = tmp_path / "demo_rp.env"
    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo", "load", "--env-file", str(env_file)]).exit_code == 0
    first = _env(env_file)["DEMO_RP_CLIENT_SECRET"]
    again = runner.invoke(args=["demo", "load", "--env-file", str(env_file)])
    assert again.exit_code == 0 and "already there" in again.output and "secret kept" in again.output
    assert _env(env_file)["DEMO_RP_CLIENT_SECRET"] == first
    assert db.session.execute(db.select(db.func.count()).select_from(Account)).scalar() == 3
    assert db.session.execute(db.select(db.func.count()).select_from(Client)).scalar() == 1


def test_demo_load_follows_the_demo_app_address(app, demo_settings, tmp_path) -> None:
    """R-N1: --rp-url moves the demo app's registered URIs (the end-to-end tests run it on a free port)."""
    result = app.test_cli_runner().invoke(args=["demo", "load", "--rp-url", "http://127.0.0.1:6101/",
                                                "--env-file", str(tmp_path / "rp.env")])
    assert result.exit_code == 0, result.output
    client = db.session.execute(db.select(Client).filter_by(client_id="demo-rp")).scalar_one()
    assert client.redirect_uris == ["http://127.0.0.1:6101/callback"]
    assert _env(tmp_path / "rp.env")["DEMO_RP_BASE_URL"] == "http://127.0.0.1:6101"


@pytest.mark.parametrize("changes", [{"env": "production"}, {"demo_data": False}])
def test_demo_load_refuses_in_production_or_when_off(app, demo_settings, tmp_path, changes) -> None:
    """R-N1: demo data never reaches production (or a configuration that switched it off)."""
    demo_settings(**changes)
    result = app.test_cli_runner().invoke(args=["demo", "load", "--env-file", str(tmp_path / "x.env")])
    assert result.exit_code != 0
    assert db.session.execute(db.select(Account).filter_by(username="student")).scalar_one_or_none() is None
    assert not (tmp_path / "x.env").exists()


def test_demo_student_has_a_school_title_and_class(app, demo_settings, tmp_path) -> None:
    """R-S2, R-O2: demo load fills the directory and the people from the fake feeds; the demo student's
    eduinfo names the school, the title 學生 and the class, and the teacher's has no class."""
    from idp.identity import services as identity
    from idp.schools.models import School

    result = app.test_cli_runner().invoke(args=["demo", "load", "--env-file", str(tmp_path / "rp.env")])
    assert result.exit_code == 0, result.output
    assert "linked to its person" in result.output
    assert db.session.execute(db.select(db.func.count()).select_from(School)).scalar() == 41
    accounts = {a.username: a for a in db.session.execute(db.select(Account)).scalars()}
    student = identity.eduinfo(identity.person_for_account(accounts["student"].id))
    assert student["schoolid"] == "014601" and db.session.get(School, "014601").name == "新北市板橋區板橋國民小學"
    assert student["titles"] == [{"schoolid": "014601", "titles": ["學生"]}]
    assert student["classinfo"][0]["classtitle"] == "三年五班" and student["classinfo"][0]["grade"] == "3"
    teacher = identity.eduinfo(identity.person_for_account(accounts["teacher"].id))
    assert teacher["titles"] == [{"schoolid": "014601", "titles": ["教師", "導師"]}] and "classinfo" not in teacher
    assert identity.person_for_account(accounts["operator"].id) is None
    assert "A123456789" not in result.output
