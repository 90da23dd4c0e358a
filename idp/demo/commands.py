"""``flask --app wsgi demo load``: demo accounts and the demo relying party (issue 2 item 11).

Idempotent: running it again changes nothing that is already right; a missing account or
client is created, and the demo client's registration is brought back to the values below.
The demo client's secret is generated here, stored hashed on the client, and written in clear
only to the env file the demo relying party reads (``instance/demo_rp.env``, mode 0600); a
second run keeps the secret if the file still matches the client.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from idp.errors import NotFound
from idp.extensions import db, settings

demo_cli = AppGroup("demo", help="Demo data for a first run (never in production).")

DEMO_CLIENT_ID = "demo-rp"
DEMO_RP_URL = "http://127.0.0.1:5001"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    name: str
    email: str
    kind: str
    is_operator: bool = False
    # A synthetic (checksum-valid, nobody's) ID, so the person comes from the fake sources like anyone.
    national_id: str | None = None


# Documented in README.md: change them anywhere the demo is reachable by others.
DEMO_ACCOUNTS = (
    DemoAccount("student", "Pupil-Demo-2026", "王小明", "student@demo.example.edu.tw", "cloud",
                national_id="A123456789"),
    DemoAccount("teacher", "Mentor-Demo-2026", "陳美玲", "teacher@demo.example.edu.tw", "cloud",
                national_id="B220139864"),
    DemoAccount("operator", "Console-Demo-2026", "維運人員", "operator@demo.example.edu.tw", "member",
                is_operator=True),
)


def _ensure_account(spec: DemoAccount) -> bool:
    """Create the account unless it exists; True if created."""
    from idp.accounts import services

    if services.get_account_by_username(spec.username) is not None:
        return False
    services.create_account(spec.username, spec.password, name=spec.name, email=spec.email,
                            email_verified=True, kind=spec.kind, is_operator=spec.is_operator, actor="demo")
    db.session.commit()
    return True


def _read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Written by `flask demo load`: the demo relying party's registration. Keep it private.\n")
        for key, value in values.items():
            fh.write(f"{key}={value}\n")
    os.replace(tmp, path)


def _ensure_client(rp_url: str, env_file: Path) -> tuple[bool, bool]:
    """Register (or re-align) the demo client through the operator rules; return (created, secret_rotated)."""
    from idp.oidc import registration as admin

    registration = {
        "name": "示範應用程式 Demo RP",
        "redirect_uris": [f"{rp_url}/callback"],
        "post_logout_redirect_uris": [f"{rp_url}/"],
        "backchannel_logout_uri": f"{rp_url}/backchannel-logout",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile email phone eduinfo guid",
        "token_endpoint_auth_method": "client_secret_basic",
        "id_token_signed_response_alg": "RS256",
        "subject_type": "pairwise",
        "require_real_name": False,
        "skip_consent": False,
    }
    current = _read_env_file(env_file).get("DEMO_RP_CLIENT_SECRET")
    try:
        client = admin.get_client(DEMO_CLIENT_ID)
    except NotFound:
        reg = admin.create_client(registration, "demo", client_id=DEMO_CLIENT_ID)
        created, secret = True, reg.secret
    else:
        admin.update_client(DEMO_CLIENT_ID, registration, "demo")
        created = False
        secret = current if current and client.check_client_secret(current) else None
        if secret is None:
            secret = admin.rotate_secret(DEMO_CLIENT_ID, "demo").secret
    db.session.commit()
    _write_env_file(env_file, {
        "DEMO_RP_ISSUER": settings().issuer,
        "DEMO_RP_CLIENT_ID": DEMO_CLIENT_ID,
        "DEMO_RP_CLIENT_SECRET": secret or "",
        "DEMO_RP_BASE_URL": rp_url,
    })
    return created, secret != current


DEMO_SCHOOL = ("01", "014601")  # 新北市板橋區板橋國民小學 in the sample directory
DEMO_PROXY_SCHOOL = ("01", "014701")  # 新北市新店區信賢種籽親子實驗小學: its rosters go to the proxy platform


@dataclass(frozen=True)
class DemoApplicant:
    """A person the sources know who has no account yet, so a newcomer can try 申請帳號 (README)."""

    name: str
    national_id: str  # synthetic, checksum-valid (generator.check_digit), nobody's
    birthday: str
    role: str
    school_code: str
    source: str


DEMO_APPLICANTS = (
    DemoApplicant("林小華", "H120465130", "2016-09-14", "學生", DEMO_SCHOOL[1], "county"),
    DemoApplicant("張志明", "Q123058777", "1988-11-02", "教師", DEMO_SCHOOL[1], "webhr"),
    # The proxy platform keeps only month and day (R-S3): the year typed when applying is anyone's.
    DemoApplicant("黃佳穎", "P220719381", "2017-03-09", "學生", DEMO_PROXY_SCHOOL[1], "proxy"),
)


def _demo_people() -> list:
    """The demo student and teacher (with accounts) and the applicants from a county feed and webHR
    (without), as the fake sources will serve them."""
    import datetime as dt

    from idp.sources.generator import SyntheticPerson

    county, school = DEMO_SCHOOL
    pupil, teacher = DEMO_APPLICANTS[0], DEMO_APPLICANTS[1]
    return [
        SyntheticPerson("A123456789", "王小明", dt.date(2016, 5, 21), school, "學生", None, 3, "305", "三年五班",
                        county),
        SyntheticPerson("B220139864", "陳美玲", dt.date(1985, 3, 9), school, "教師", "導師", None, None, None,
                        county),
        SyntheticPerson(pupil.national_id, pupil.name, dt.date.fromisoformat(pupil.birthday), school, "學生", None,
                        3, "305", "三年五班", county),
        SyntheticPerson(teacher.national_id, teacher.name, dt.date.fromisoformat(teacher.birthday), school, "教師",
                        None, None, None, None, county),
    ]


def _load_proxy_roster() -> dict[str, int]:
    """The proxy-platform applicant: a roster upload of the experimental school (once), synced."""
    import datetime as dt

    from idp.identity.models import RosterUpload, academic_term
    from idp.sources.generator import SyntheticPerson, roster_csv
    from idp.sources.proxy_roster import ProxyRoster, load_roster
    from idp.sources.sync import sync

    county, school = DEMO_PROXY_SCHOOL
    spec = DEMO_APPLICANTS[2]
    if not db.session.scalar(db.select(RosterUpload.id).filter_by(school_code=school, filename="demo-roster.csv")):
        year, semester = academic_term(dt.date(2025, 9, 1))
        person = SyntheticPerson(spec.national_id, spec.name, dt.date.fromisoformat(spec.birthday), school, "學生",
                                 None, 2, "201", "二年甲班", county)
        load_roster(roster_csv([person]), school, year, semester, "學生", filename="demo-roster.csv",
                    uploaded_by="demo")
        db.session.commit()
    return sync(ProxyRoster())


def _load_identities() -> dict[str, dict[str, int]]:
    """Schools from the sample directory, then people (the demo pair plus 200 synthetic ones at the
    directory's schools) served by the loopback fake feeds and synced through the real adapters."""
    import sqlalchemy as sa

    from idp.schools.commands import SAMPLE
    from idp.schools.loaders import load_file
    from idp.schools.models import School
    from idp.sources.fake import load_demo_people

    report = load_file(SAMPLE.read_text(encoding="utf-8"), "csv")
    db.session.commit()
    click.echo(f"schools: {report.added} added, {report.updated} updated, {report.unchanged} unchanged")
    schools = [(c, code) for code, c in db.session.execute(
        sa.select(School.code, School.county_code).where(School.active.is_(True)).order_by(School.code))]
    totals = load_demo_people(200, seed=1, extra=_demo_people(), schools=schools)
    totals["proxy"] = _load_proxy_roster()
    return totals


def _link(spec: DemoAccount) -> bool:
    """Link the demo account to its person (the step an application for an account does)."""
    from idp.accounts import services as accounts
    from idp.identity import services as identity

    if spec.national_id is None:
        return False
    person = identity.find_person(spec.national_id)
    account = accounts.get_account_by_username(spec.username)
    if person is None or account is None or person.account_id == account.id:
        return False
    identity.link_account(person, account, actor="demo")
    db.session.commit()
    return True


@demo_cli.command("load")
@click.option("--rp-url", default=DEMO_RP_URL, show_default=True,
              help="Base URL of the demo relying party (its redirect and logout URIs hang off it).")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the demo client's id and secret [default: instance/demo_rp.env].")
def load(rp_url: str, env_file: Path | None) -> None:
    """Create the demo accounts and register the demo relying party (idempotent)."""
    s = settings()
    if s.env == "production":
        raise click.ClickException("demo data is never loaded in production")
    if not s.demo_data:
        raise click.ClickException("demo data is switched off: set demo_data = true (IDP_DEMO_DATA=1)")
    rp_url = rp_url.rstrip("/")
    env_file = env_file or Path(current_app.instance_path) / "demo_rp.env"
    for name, counts in _load_identities().items():
        click.echo(f"source  {name:<9} {counts['records']} records, {counts['new_persons']} new persons")
    for spec in DEMO_ACCOUNTS:
        made = _ensure_account(spec)
        linked = _link(spec)
        click.echo(f"account {spec.username:<9} {'created' if made else 'already there'}"
                   + (", linked to its person" if linked else ""))
    created, rotated = _ensure_client(rp_url, env_file)
    state = "registered" if created else "already registered"
    click.echo(f"client  {DEMO_CLIENT_ID:<9} {state}; redirect {rp_url}/callback; "
               f"secret {'new' if rotated else 'kept'}, in {env_file}")


# -- a county's identity provider for the county-account button (issue 12 item 5) -----------------
DEMO_COUNTY = "ntpc"  # the [[county]] name: our redirect URI is {issuer}/login/county/ntpc/callback
DEMO_COUNTY_CODE = "01"  # 新北市 in the school directory
DEMO_COUNTY_CLIENT_ID = "edu-sso"
DEMO_COUNTY_SECRET_ENV = "IDP_COUNTY_NTPC_SECRET"
# Documented in README.md: the demo pupils' passwords at the county (their county accounts are
# ``generator.county_account`` of the demo people, the ones the county feed exports as 縣市帳號).
DEMO_COUNTY_PASSWORD = "County-Demo-2026"


def demo_county_accounts() -> list[tuple[str, str]]:
    """(county account, name) of the demo pupils of 新北市, as the county's feed exports them."""
    from idp.sources.generator import county_account

    out = []
    for p in _demo_people():
        account = county_account(p)
        if account and p.county == DEMO_COUNTY_CODE:
            out.append((account, p.name))
    return out


def _county_entry(issuer: str) -> str:
    return (f'# Written by `flask demo county` on the instance playing 新北市: the national service\'s\n'
            f'# federation_file for the demo (docs/operating.md, "County accounts").\n'
            f'[[county]]\nname = "{DEMO_COUNTY}"\ncounty = "{DEMO_COUNTY_CODE}"\nissuer = "{issuer}"\n'
            f'client_id = "{DEMO_COUNTY_CLIENT_ID}"\nclient_secret_env = "{DEMO_COUNTY_SECRET_ENV}"\n'
            f'scopes = "openid profile"\nmatch_claim = "preferred_username"\n')


@demo_cli.command("county")
@click.option("--rp-issuer", default="http://127.0.0.1:5000", show_default=True,
              help="The issuer of the national service that signs people in through this county.")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"Where to write {DEMO_COUNTY_SECRET_ENV}=<secret> [default: instance/county-ntpc.env].")
@click.option("--federation-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the national service's federation_file ([[county]] entry) here.")
def county(rp_issuer: str, env_file: Path | None, federation_file: Path | None) -> None:
    """Make THIS instance play 新北市's identity provider (R-L2 demo): the demo pupils' county accounts and
    the national service registered as its client (idempotent). Run it on a second instance with its own
    database and issuer; `make run` does."""
    from idp.oidc import registration as admin

    s = settings()
    if s.env == "production":
        raise click.ClickException("demo data is never loaded in production")
    if not s.demo_data:
        raise click.ClickException("demo data is switched off: set demo_data = true (IDP_DEMO_DATA=1)")
    rp_issuer = rp_issuer.rstrip("/")
    env_file = env_file or Path(current_app.instance_path) / "county-ntpc.env"
    from idp.accounts import services as accounts

    for username, name in demo_county_accounts():
        made = accounts.get_account_by_username(username) is None
        if made:
            accounts.create_account(username, DEMO_COUNTY_PASSWORD, name=name, kind="member", actor="demo")
            db.session.commit()
        click.echo(f"county account {username} ({name}) {'created' if made else 'already there'}")
    registration = {
        "name": "教育體系單一簽入服務 (national education sign-in)",
        "redirect_uris": [f"{rp_issuer}/login/county/{DEMO_COUNTY}/callback"],
        "post_logout_redirect_uris": [f"{rp_issuer}/login/county/{DEMO_COUNTY}/logged-out"],
        "grant_types": ["authorization_code"],
        "scope": "openid profile",
        "token_endpoint_auth_method": "client_secret_basic",
        "id_token_signed_response_alg": "RS256",
        "subject_type": "public",
        "require_real_name": False,
        "skip_consent": True,
    }
    wanted = os.environ.get(DEMO_COUNTY_SECRET_ENV) or _read_env_file(env_file).get(DEMO_COUNTY_SECRET_ENV)
    try:
        client = admin.get_client(DEMO_COUNTY_CLIENT_ID)
    except NotFound:
        secret = admin.create_client(registration, "demo", client_id=DEMO_COUNTY_CLIENT_ID).secret
        state = "registered"
    else:
        admin.update_client(DEMO_COUNTY_CLIENT_ID, registration, "demo")
        secret = wanted if wanted and client.check_client_secret(wanted) else None
        if secret is None:
            secret = admin.rotate_secret(DEMO_COUNTY_CLIENT_ID, "demo").secret
        state = "already registered"
    db.session.commit()
    _write_env_file(env_file, {DEMO_COUNTY_SECRET_ENV: secret or ""})
    click.echo(f"client  {DEMO_COUNTY_CLIENT_ID} {state}; redirect {registration['redirect_uris'][0]}; "
               f"secret in {env_file}")
    if federation_file is not None:
        federation_file.parent.mkdir(parents=True, exist_ok=True)
        federation_file.write_text(_county_entry(s.issuer), encoding="utf-8")
        click.echo(f"federation_file for {rp_issuer}: {federation_file}")
