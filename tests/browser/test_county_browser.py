"""County-account sign-in in a real browser (issue 12 "Done when"; R-L2, R-L4).

Two instances of this very provider run side by side: the national service (``live``, here with a
``federation_file``) and a second one on its own port, database and data playing 新北市's identity
provider (``flask demo county``), at ``http://localhost:<port>`` so that its cookies are not the national
service's (cookies ignore ports). 臺北市 is configured too, on a port where nothing answers; 桃園市 points
at a county provider that lies (``tests/federation/county_op.py``), to show a browser what happens with a
nonce that is not ours and an ID token from another issuer.

Walks: a pupil presses 新北市, signs in at the county and reaches the demo app with their eduinfo; the
same pupil's cloud account and county login are one account; a county-only pupil gets an account; after
the county's source reports her left (a sync), her county login is refused with the page; a county that
is down gives its page; a tampered state is refused. Every page of ours on the way passes axe-core
(WCAG 2.1 A + AA) in zh-TW and in English.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from browser_helpers import Live, check_page, demo_password, with_lang
from e2e_helpers import (
    ROOT,
    demo_rp_process,
    env_without_proxies,
    flask_cli,
    free_port,
    recreate_database,
    start_server,
)

sys.path.insert(0, str(ROOT / "tests" / "federation"))

from county_op import CLIENT_SECRET as LIAR_SECRET
from county_op import serve_county

pytestmark = [pytest.mark.browser, pytest.mark.live]

PG_URL = os.environ.get("IDP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LOCALES = ["zh-TW", "en"]
COUNTY_PASSWORD = "County-Demo-2026"


def _common_env(workdir: Path, name: str) -> dict[str, str]:
    env = env_without_proxies()
    env.update(IDP_CONFIG="testing", IDP_REDIS_URL=REDIS_URL, IDP_STORE_PREFIX=f"{name}{os.getpid()}:",
               IDP_KEYS_DIR=str(workdir / f"{name}-keys"), IDP_DEMO_DATA="true", IDP_MAIL_SENDER="outbox",
               IDP_SMS_SENDER="outbox", IDP_LOG_LEVEL="WARNING")
    return env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("county")


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"main": free_port(), "county": free_port(), "rp": free_port(), "dead": free_port()}


@pytest.fixture(scope="module")
def county_live(workdir: Path, ports: dict[str, int]) -> Iterator[dict[str, Any]]:
    """新北市's identity provider: a second instance of this provider with its own database and data."""
    env = _common_env(workdir, "fedcounty")
    issuer = f"http://localhost:{ports['county']}"
    env.update(IDP_ISSUER=issuer, IDP_DATABASE_URL=recreate_database(PG_URL, "fedcounty"))
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "demo", "county", "--rp-issuer", f"http://127.0.0.1:{ports['main']}",
              "--env-file", str(workdir / "county.env"), "--federation-file", str(workdir / "federation.toml"))
    server = start_server(env, ports["county"], workdir / "county.log")
    try:
        yield {"issuer": issuer, "server": server}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def liar() -> Iterator[Any]:
    """桃園市's provider in these tests: it speaks the protocol and lies as told (``tamper``)."""
    with serve_county() as op:
        op.users["someone"] = {"sub": "tyc-0001", "preferred_username": "tyc000001"}
        op.user = "someone"
        yield op


@pytest.fixture(scope="module")
def live(workdir: Path, ports: dict[str, int], county_live: dict[str, Any], liar: Any) -> Iterator[Live]:
    """The national service with three counties: 新北市 (the second instance), 臺北市 (down), 桃園市 (lies)."""
    secret = (workdir / "county.env").read_text().split("IDP_COUNTY_NTPC_SECRET=", 1)[1].split()[0]
    federation = workdir / "federation.toml"
    federation.write_text(federation.read_text(encoding="utf-8") + (
        f'\n[[county]]\nname = "tpe"\ncounty = "63"\nissuer = "http://127.0.0.1:{ports["dead"]}"\n'
        f'client_id = "edu-sso"\nclient_secret_env = "IDP_COUNTY_NTPC_SECRET"\n'
        f'\n[[county]]\nname = "tyc"\ncounty = "03"\nissuer = "{liar.issuer}"\nclient_id = "edu-sso"\n'
        f'client_secret_env = "IDP_COUNTY_TYC_SECRET"\nscopes = "openid profile"\n'
        f'match_claim = "preferred_username"\n'), encoding="utf-8")
    env = _common_env(workdir, "fedmain")
    env.update(IDP_ISSUER=f"http://127.0.0.1:{ports['main']}", IDP_DATABASE_URL=recreate_database(PG_URL, "fedmain"),
               IDP_FEDERATION_FILE=str(federation), IDP_COUNTY_NTPC_SECRET=secret,
               IDP_COUNTY_TYC_SECRET=LIAR_SECRET)
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "demo", "load", "--rp-url", f"http://127.0.0.1:{ports['rp']}", "--env-file",
              str(workdir / "rp.env"))
    server = start_server(env, ports["main"], workdir / "main.log")
    with Live(server=server, env=env, demo_redirect_uri=f"http://127.0.0.1:{ports['rp']}/callback") as live:
        yield live


@pytest.fixture(scope="module")
def demo_rp(live: Live, workdir: Path, ports: dict[str, int]) -> Iterator[str]:
    env = dict(live.env, DEMO_RP_ENV_FILE=str(workdir / "rp.env"))
    with demo_rp_process(env, f"http://127.0.0.1:{ports['rp']}", workdir / "demo-rp.log") as base:
        yield base


def _county_accounts() -> dict[str, str]:
    from idp.demo.commands import demo_county_accounts

    return {name: account for account, name in demo_county_accounts()}


def _press_county(page: Any, name: str) -> None:
    page.locator(f"#county-login a[data-county={name}]").click()
    page.wait_for_load_state()


def _sign_in_at_county(page: Any, county_live: dict[str, Any], account: str) -> None:
    """At 新北市's own login page (the second instance): account and password, as a pupil types them."""
    assert page.url.startswith(county_live["issuer"]), page.url  # its login page (its authorization request's answer)
    page.wait_for_selector("input[name=password]")
    page.fill("input[name=username]", account)
    page.fill("input[name=password]", COUNTY_PASSWORD)
    page.locator("form:has(input[name=password]) [type=submit]").click()
    # Its answer continues by itself (a page, not a redirect: security/headers.py) back to us.
    page.wait_for_url(lambda url: not url.startswith(county_live["issuer"]), timeout=15000)
    page.wait_for_load_state()


def _sign_out(page: Any, live: Live) -> None:
    page.goto(live.base + "/logout")
    if page.locator("form [type=submit]").count():
        page.locator("main form [type=submit]").first.click()
        page.wait_for_load_state()
        if page.locator("meta[http-equiv=refresh]").count():  # on to the county's end-session endpoint: a
            # page continuing there by itself (security/headers.py), not a redirect
            page.wait_for_url(lambda url: not url.startswith(live.base + "/logout"), timeout=15000)
            page.wait_for_load_state()


def _username(page: Any, live: Live) -> str:
    page.goto(live.base + "/account/")
    return page.locator("[data-field=username]").inner_text().split("—")[0].strip()


# -- the walks ----------------------------------------------------------------------------------------
def test_a_pupil_signs_in_with_the_county_button_and_reaches_the_demo_app(page, live, county_live, demo_rp,
                                                                          axe) -> None:
    """R-L2: from the demo app, the pupil presses 新北市 on the login page, signs in at 新北市's own provider
    (the second instance) and reaches the demo app with their school and class; the ID token says the
    sign-in was federated (amr fed) at the real-name level."""
    page.goto(demo_rp + "/")
    page.click("#login")
    page.wait_for_selector("input[name=password]")  # the login page: the authorization request's answer
    assert page.locator("#county-login a[data-county]").count() == 3
    check_page(page, axe)
    _press_county(page, "ntpc")
    _sign_in_at_county(page, county_live, _county_accounts()["王小明"])
    page.wait_for_url(lambda url: url.startswith(live.base + "/oauth/authorize") or url.startswith(demo_rp))
    if page.url.startswith(live.base):  # the demo app's consent, the first time
        page.click("input[name=allow]")
    page.wait_for_url(demo_rp + "/")
    assert "王小明" in page.inner_text("#greeting")
    edu = page.inner_text("#eduinfo")
    assert "新北市板橋區板橋國民小學" in edu and "三年五班" in edu
    claims = page.inner_text("#id-claims")
    assert "fed" in claims and "urn:tw:edu:sso:acr:cloud" in claims


def test_with_consent_remembered_the_county_sign_in_goes_straight_through_to_the_app(page, live, county_live,
                                                                                     demo_rp) -> None:
    """R-L2, R-N3: once the app's consent is remembered, the county's login form is followed by redirects
    all the way to the demo app (county → our callback → our authorize → the app). Chromium checks the
    county page's CSP form-action on every one of those hops, so the county's sign-in answers with a page
    that continues by itself instead; before, the browser stayed on the county's page."""
    for attempt in range(2):
        page.context.clear_cookies()
        page.goto(demo_rp + "/")
        page.click("#login")
        page.wait_for_selector("input[name=password]")  # the login page: the authorization request's answer
        _press_county(page, "ntpc")
        _sign_in_at_county(page, county_live, _county_accounts()["王小明"])
        page.wait_for_url(lambda url: url.startswith(live.base + "/oauth/authorize") or url.startswith(demo_rp),
                          timeout=15000)
        if page.url.startswith(live.base):
            assert attempt == 0, "the consent was asked again"
            page.click("input[name=allow]")
        page.wait_for_url(demo_rp + "/", timeout=15000)
        assert "王小明" in page.inner_text("#greeting")


def test_cloud_account_and_county_login_land_on_the_same_account(page, live, county_live) -> None:
    """R-L2, R-A2: the pupil's cloud-account sign-in and county sign-in are one account for life."""
    page.goto(live.base + "/login?force=1")
    page.fill("input[name=username]", "student")
    page.fill("input[name=password]", demo_password("student"))
    page.locator("form:has(input[name=password]) [type=submit]").click()
    page.wait_for_load_state()
    assert _username(page, live) == "student"
    _sign_out(page, live)
    page.goto(live.base + "/login")
    _press_county(page, "ntpc")
    _sign_in_at_county(page, county_live, _county_accounts()["王小明"])
    assert _username(page, live) == "student"


@pytest.mark.parametrize("locale", LOCALES)
def test_logout_also_ends_the_county_session(page, live, county_live, axe, locale) -> None:
    """R-L2, R-L4: signing out of a county session passes through 新北市's end-session endpoint and says so;
    the page passes axe."""
    page.goto(with_lang(live.base + "/login", locale))
    _press_county(page, "ntpc")
    _sign_in_at_county(page, county_live, _county_accounts()["王小明"])
    _sign_out(page, live)
    # Through 新北市's end-session endpoint (a page continuing there by itself: security/headers.py) and back.
    page.wait_for_url(lambda url: url.startswith(live.base + "/login/county/ntpc/logged-out"), timeout=15000)
    assert page.locator("[data-county-session=ended]").count() == 1
    check_page(page, axe, locale)
    page.goto(county_live["issuer"] + "/login")  # the county's own session is over too
    assert page.locator("input[name=password]").count() == 1


def _left(live: Live, person: Any) -> None:
    """新北市's student-affairs system reports the pupil 離校: its next change-feed page, synced."""
    from idp.extensions import db
    from idp.identity.models import SourceCursor
    from idp.sources import generator as gen
    from idp.sources.county_sis import CountySIS
    from idp.sources.fake import feed_app, serve
    from idp.sources.sync import sync

    raw = {**gen.county_raw(person), "status": "離校"}
    with live.app.app_context():
        cursor = int(db.session.get(SourceCursor, "county-01").cursor or 0)
        # A change feed: what follows the stored cursor is the news (the earlier pages are never read again).
        with serve(feed_app([raw] * (cursor + 1), "t", "sch_code")) as url:
            totals = sync(CountySIS(url=url, token="t", county="01", name="county-01"))
        db.session.remove()
    assert totals["records"] == 1


@pytest.fixture(scope="module")
def lin_left(browser: Any, live: Live, county_live: dict[str, Any]) -> str:
    """林小华 (no cloud account) signs in with her county account once, which creates her account; then
    新北市's source reports her left and it is synced. Returns her county account."""
    from idp.demo.commands import _demo_people

    account = _county_accounts()["林小華"]
    context = browser.new_context(locale="zh-TW")
    page = context.new_page()
    page.goto(live.base + "/login")
    _press_county(page, "ntpc")
    _sign_in_at_county(page, county_live, account)
    assert _username(page, live) == f"ntpc.{account}"
    context.close()
    _left(live, next(p for p in _demo_people() if p.name == "林小華"))
    return account


@pytest.mark.parametrize("locale", LOCALES)
def test_a_county_only_pupil_is_refused_once_the_county_reports_she_left(page, live, county_live, lin_left, axe,
                                                                        locale) -> None:
    """R-L2: 林小華 had no cloud account: her first county sign-in created one (named after the county and her
    county account); after the county's source reports her left and it is synced, her county login is
    refused with the page that points to the cloud-account login and 忘記帳號 (axe-clean)."""
    page.goto(with_lang(live.base + "/login", locale))
    _press_county(page, "ntpc")
    _sign_in_at_county(page, county_live, lin_left)
    assert page.locator("[data-error=county_not_enrolled][data-county=ntpc]").count() == 1, page.url
    assert page.locator("a[data-cloud-login]").count() == 1
    assert page.locator("a[href='/account/recover/account']").count() >= 1
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_county_that_is_down_gives_its_page(page, live, axe, locale) -> None:
    """R-L2: 臺北市's provider does not answer: the page names 臺北市 and offers the cloud-account sign-in."""
    page.goto(with_lang(live.base + "/login", locale))
    _press_county(page, "tpe")
    assert page.locator("[data-error=county_unavailable][data-county=tpe]").count() == 1
    assert "臺北市" in page.inner_text("h1")
    page.locator("a[data-cloud-login]").click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/login"
    page.go_back()
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_tampered_state_is_refused(page, live, county_live, axe, locale) -> None:
    """R-L2: a state changed on its way (here in the redirect to the county) comes back as not this
    browser's: the county's answer signs nobody in and the page says to start again."""

    def change_state(route: Any) -> None:
        resp = route.fetch(max_redirects=0)
        parts = urlsplit(resp.headers["location"])
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["state"] = query["state"][::-1]
        route.fulfill(response=resp, headers={**resp.headers, "location": parts._replace(
            query=urlencode(query)).geturl()})

    page.route(lambda url: url.startswith(live.base) and urlsplit(url).path == "/login/county/ntpc", change_state)
    page.goto(with_lang(live.base + "/login", locale))
    _press_county(page, "ntpc")
    if page.url.startswith(county_live["issuer"]):
        _sign_in_at_county(page, county_live, _county_accounts()["王小明"])
    assert page.locator("[data-error=county_state][data-county=ntpc]").count() == 1, page.url
    check_page(page, axe, locale)
    page.goto(live.base + "/account/")
    assert urlsplit(page.url).path == "/login"  # not signed in


@pytest.mark.parametrize(("tamper", "reason"), [({"nonce": "not-yours"}, "nonce"),
                                                ({"iss": "https://evil.example.org"}, "issuer")])
def test_a_lying_county_is_refused(page, live, liar, axe, tamper, reason) -> None:
    """R-L2: an ID token with another nonce, or from another issuer, is refused in the browser too."""
    liar.tamper.clear()
    liar.tamper.update(tamper)
    page.goto(live.base + "/login")
    _press_county(page, "tyc")
    assert page.locator("[data-error=county_answer_refused][data-county=tyc]").count() == 1
    check_page(page, axe)
    page.goto(live.base + "/account/")
    assert urlsplit(page.url).path == "/login"


@pytest.mark.parametrize("locale", LOCALES)
def test_the_other_new_pages_pass_axe(new_page, live, axe, locale) -> None:
    """R-L2: the "may still be open" logout page, the console's county pages and the account-name page pass
    axe in zh-TW and English."""
    from browser_helpers import sign_in

    page = new_page()
    page.goto(with_lang(live.base + "/login/county/tpe/signed-out", locale))
    assert page.locator("[data-county-session=maybe-open]").count() == 1
    check_page(page, axe, locale)
    sign_in(page, live, "operator")
    page.goto(with_lang(live.base + "/admin/counties", locale))
    assert page.locator("tr[data-county]").count() == 3
    check_page(page, axe, locale)
    page.fill("input[name=username]", "student")
    page.locator("main form:has(input[name=username]) [type=submit]").click()
    page.wait_for_load_state()
    assert "/admin/counties/people/" in page.url
    check_page(page, axe, locale)
    sign_in(page, live, "student")
    page.goto(with_lang(live.base + "/account/username", locale))
    check_page(page, axe, locale)
