"""The "Done when" walk in a real browser: headless Chromium drives the demo relying party, which
signs the demo student in through the hosted login and consent pages, shows the claims,
refreshes its tokens and logs out through the provider (issue 2 items 10, 11; R-L1, R-L4, R-O1).

Screenshots go to ``$IDP_E2E_ARTIFACTS`` (default: the system temp dir, ``idp-e2e/``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import requests
from e2e_helpers import CHROMIUM_ARGS

pytestmark = [pytest.mark.live, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    path = Path(os.environ.get("IDP_E2E_ARTIFACTS") or Path(tempfile.gettempdir()) / "idp-e2e")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(locale="zh-TW", viewport={"width": 1100, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15000)
        yield page
        context.close()
        browser.close()


def test_demo_student_signs_in_refreshes_and_logs_out(page, demo_rp, live_server, artifacts, live_dir) -> None:
    """R-L1, R-L4, R-O1, R-O2: the demo student signs in to the demo app through the hosted login and
    consent pages (zh-TW), sees their name, school and class and the ID-token claims, refreshes, and
    signs out everywhere; the student's national ID appears in no page and no server log."""
    pages: list[str] = []
    page.goto(demo_rp + "/")
    page.click("#login")

    page.wait_for_selector("input[name=password]")  # the login page: the authorization request's answer
    assert page.locator("html").get_attribute("lang", timeout=5000).lower().startswith("zh")
    page.fill("input[name=username]", "student")
    page.fill("input[name=password]", "Pupil-Demo-2026")
    page.screenshot(path=str(artifacts / "1-login.png"))
    page.locator("form:has(input[name=password]) [type=submit]").click()

    page.wait_for_selector("input[name=allow]")  # back at the authorization request: its consent page
    assert page.locator("[data-scope=profile]").count() == 1  # the consent page lists what the app gets
    page.screenshot(path=str(artifacts / "2-consent.png"))
    page.click("input[name=allow]")

    page.wait_for_url(demo_rp + "/")
    assert "王小明" in page.inner_text("#greeting")
    claims = page.inner_text("#id-claims")
    assert live_server.base in claims and "urn:tw:edu:sso:acr:cloud" in claims
    assert "student@demo.example.edu.tw" in page.inner_text("#userinfo")
    edu = page.inner_text("#eduinfo")
    assert "新北市板橋區板橋國民小學" in edu and "學生" in edu and "三年五班" in edu
    pages.append(page.content())
    expires_before = page.inner_text("#expires-at")
    page.screenshot(path=str(artifacts / "3-claims.png"), full_page=True)

    page.click("#refresh")
    page.wait_for_selector("#notice")
    assert page.inner_text("#refresh-count") == "1"
    assert page.inner_text("#expires-at") >= expires_before

    page.click("#logout")
    page.wait_for_url(lambda url: url.startswith(demo_rp + "/?state="))
    assert page.locator("#login").count() == 1
    assert "您已登出" in page.inner_text("#notice")
    page.screenshot(path=str(artifacts / "4-signed-out.png"))
    logs = "".join(p.read_text(errors="replace") for p in live_dir.glob("*.log"))
    assert "POST /oauth/token" in logs and "login.success" in logs  # access and audit lines were written
    for national_id in ("A123456789", "a123456789"):
        assert national_id not in logs and all(national_id not in html for html in pages)
    # Signed out at the provider too: its home page asks to sign in again.
    cookies = {c["name"]: c["value"] for c in page.context.cookies(live_server.base)}
    home = requests.get(live_server.base + "/", cookies=cookies, timeout=10)
    assert 'name="password"' in home.text


def test_logout_at_provider_reaches_demo_app_by_back_channel(page, demo_rp, live_server, artifacts) -> None:
    """R-L4: signing out on the provider's own page ends the demo app's session too (back-channel logout)."""
    page.goto(demo_rp + "/")
    page.click("#login")
    page.wait_for_selector("input[name=password]")  # the login page: the authorization request's answer
    page.fill("input[name=username]", "student")
    page.fill("input[name=password]", "Pupil-Demo-2026")
    page.locator("form:has(input[name=password]) [type=submit]").click()
    page.locator("input[name=allow]").or_(page.locator("#greeting")).first.wait_for()
    if page.locator("input[name=allow]").count():
        page.click("input[name=allow]")
        page.wait_for_url(demo_rp + "/")
    assert "王小明" in page.inner_text("#greeting")

    page.goto(live_server.base + "/logout")
    page.locator("form [type=submit]").last.click()
    page.wait_for_load_state()

    page.goto(demo_rp + "/")
    assert page.locator("#login").count() == 1
    assert "back-channel" in page.inner_text("#notice")
    page.screenshot(path=str(artifacts / "5-backchannel.png"))


def test_demo_app_rejects_a_forged_logout_token(demo_rp) -> None:
    """R-L4: the demo app's back-channel endpoint refuses a token that is not a signed logout token."""
    assert requests.post(demo_rp + "/backchannel-logout", data={"logout_token": "a.b.c"}, timeout=10).status_code == 400
    assert requests.post(demo_rp + "/backchannel-logout", data={}, timeout=10).status_code == 400
