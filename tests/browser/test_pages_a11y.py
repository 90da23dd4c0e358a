"""Accessibility of the pages a person meets, in a real browser (issue 10 item 12 and "Done when"):
axe-core finds no WCAG 2.1 A/AA violation in zh-TW and en, the login page works at 320 px and at
200 % zoom, focus moves to the error summary after a refused form, the language switch marks the
current language, and the skip link is the first stop of the keyboard. Every page load is also
checked for CSP violations (inline script or style would show up as one).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser_helpers import check_page, sign_in, with_lang

pytestmark = [pytest.mark.browser, pytest.mark.live]

LOCALES = ["zh-TW", "en"]




@pytest.fixture(scope="module")
def student_state(browser: Any, live: Any) -> dict[str, Any]:
    """The demo student's signed-in browser state (cookies), with the demo app already allowed, so
    that /account/apps lists something."""
    from idp.accounts.models import Account
    from idp.extensions import db
    from idp.oidc import services

    with live.app.app_context():
        student = db.session.execute(db.select(Account).filter_by(username="student")).scalar_one()
        services.grant_consent(student, live.demo_client_id, "openid profile")
        db.session.commit()
    context = browser.new_context(locale="zh-TW")
    page = context.new_page()
    sign_in(page, live, "student")
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture(scope="module")
def operator_state(browser: Any, live: Any) -> dict[str, Any]:
    context = browser.new_context(locale="zh-TW")
    page = context.new_page()
    sign_in(page, live, "operator")
    state = context.storage_state()
    context.close()
    return state


def test_axe_harness_reports_a_violation(page, live, axe) -> None:
    """R-L1: the harness is not blind: an input without a label added to the login page is reported."""
    page.goto(live.base + "/login")
    page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=text>')")
    assert "label" in {v["id"] for v in axe(page)}


# -- pages without a session -------------------------------------------------------------------
@pytest.mark.parametrize("locale", LOCALES)
def test_login_page_passes_axe(page, live, axe, locale) -> None:
    """R-L1: the login page has no WCAG 2.1 A/AA violation (axe-core), in zh-TW and in English."""
    page.goto(with_lang(live.base + "/login", locale))
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_error_page_passes_axe(page, live, axe, locale) -> None:
    """R-N4: a 400 error page (an unregistered app) has no violation and offers ways forward."""
    resp = page.goto(with_lang(live.base + "/oauth/authorize?client_id=nobody&response_type=code", locale))
    assert resp.status == 400
    assert page.locator(".ways-forward a[href='/help/contact']").count() == 1
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_login_with_errors_passes_axe_and_focuses_the_summary(page, live, axe, locale) -> None:
    """R-L1, R-N4: after a refused sign-in, focus is on the error summary, and the page has no violation."""
    page.goto(with_lang(live.base + "/login", locale))
    page.locator("form:has(input[name=password]) [type=submit]").click()
    page.wait_for_load_state()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.locator("#error-summary a[href='#username']").count() == 1
    page.locator("#error-summary a[href='#password']").click()
    assert page.evaluate("document.activeElement.id") == "password"
    check_page(page, axe, locale)


# -- pages of a signed-in person ---------------------------------------------------------------
@pytest.mark.parametrize("locale", LOCALES)
def test_consent_page_passes_axe(new_page, live, axe, locale, student_state) -> None:
    """R-L4: the consent page (a new scope of the demo app) has no violation."""
    page = new_page(storage_state=student_state)
    page.goto(with_lang(live.authorize_url(scope="openid profile email"), locale))
    assert page.locator("input[name=allow]").count() == 1
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_account_apps_page_passes_axe(new_page, live, axe, locale, student_state) -> None:
    """R-L4: the person's authorised apps page (with the demo app listed) has no violation."""
    page = new_page(storage_state=student_state)
    page.goto(with_lang(live.base + "/account/apps", locale))
    assert page.locator("[data-client=demo-rp]").count() == 1
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_sign_out_confirmation_and_signed_out_pages_pass_axe(page, live, axe, locale) -> None:
    """R-L4: the provider's sign-out confirmation and the signed-out page that follows have no violation."""
    sign_in(page, live, "teacher")
    page.goto(with_lang(live.base + "/oauth/logout", locale))
    assert page.locator("form [type=submit]").count() == 1
    check_page(page, axe, locale)
    page.locator("form [type=submit]").click()
    page.wait_for_load_state()
    assert page.locator(".logged-out").count() == 1
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_home_sign_out_pages_pass_axe(page, live, axe, locale) -> None:
    """R-L4: the home page's sign-out confirmation (/logout) and the page after it have no violation."""
    sign_in(page, live, "teacher")
    page.goto(with_lang(live.base + "/logout", locale))
    check_page(page, axe, locale)
    page.locator("main form [type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("main a[href='/']").count() == 1  # sign in again
    check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_real_name_refusal_passes_axe(new_page, live, axe, locale, operator_state) -> None:
    """R-A3: the real-name refusal (a member account asked for the cloud level) has no violation and
    links to 申請帳號."""
    page = new_page(storage_state=operator_state)
    resp = page.goto(with_lang(live.authorize_url(acr_values="urn:tw:edu:sso:acr:cloud"), locale))
    assert resp.status == 403
    assert page.locator("a[href='/account/apply']").count() == 1
    check_page(page, axe, locale)


# -- the operator console ----------------------------------------------------------------------
@pytest.mark.parametrize("locale", LOCALES)
def test_console_pages_pass_axe(new_page, live, axe, locale, operator_state) -> None:
    """R-O3: the console's app list, people look-up and audit trail have no violation."""
    page = new_page(storage_state=operator_state)
    for path in ("/admin/clients", "/admin/people", "/admin/audit"):
        page.goto(with_lang(live.base + path, locale))
        assert page.locator("header .operator").count() == 1, path
        check_page(page, axe, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_console_form_with_errors_passes_axe_and_focuses_the_summary(new_page, live, axe, locale,
                                                                     operator_state) -> None:
    """R-O3, R-N4: a refused app registration puts focus on the error summary, which links to the
    field; the page has no violation."""
    page = new_page(storage_state=operator_state)
    page.goto(with_lang(live.base + "/admin/clients/new", locale))
    page.fill("#name", "")
    page.locator("form [type=submit]").first.click()
    page.wait_for_load_state()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.locator("#error-summary a[href='#name']").count() == 1
    check_page(page, axe, locale)


# -- layout, keyboard, language switch ---------------------------------------------------------
def test_login_page_fits_320_px_and_200_percent_zoom(new_page, live) -> None:
    """R-L1: at 320 px wide the login page does not scroll sideways; at 200 % zoom (640 CSS px on a
    1280 px screen) the form is still there and fits too."""
    narrow = new_page(viewport={"width": 320, "height": 640})
    narrow.goto(live.base + "/login")
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 320
    assert narrow.locator("input[name=password]").is_visible()
    zoomed = new_page(viewport={"width": 640, "height": 400}, device_scale_factor=2)
    zoomed.goto(live.base + "/login")
    assert zoomed.evaluate("document.documentElement.scrollWidth") <= 640
    for selector in ("input[name=username]", "input[name=password]", "form [type=submit]"):
        zoomed.locator(selector).scroll_into_view_if_needed()
        assert zoomed.locator(selector).is_visible(), selector


def test_console_tables_scroll_inside_their_box_at_320_px(new_page, live, operator_state) -> None:
    """R-O3: at 320 px the console's audit trail and app list scroll inside their own box, not the page."""
    page = new_page(viewport={"width": 320, "height": 640}, storage_state=operator_state)
    for path in ("/admin/audit", "/admin/clients"):
        page.goto(live.base + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 320, path
        assert page.locator(".table-wrap").count() >= 1, path


def test_login_heading_leaves_no_character_alone_at_390_px(new_page, live) -> None:
    """R-L1: the login heading does not break leaving one character on its own line on a 390 px phone."""
    page = new_page(viewport={"width": 390, "height": 800})
    page.goto(live.base + "/login")
    lines = page.evaluate("""() => {
        const text = document.querySelector('h1').firstChild;
        const tops = [];
        for (let i = 0; i < text.length; i++) {
            const r = document.createRange(); r.setStart(text, i); r.setEnd(text, i + 1);
            const box = r.getBoundingClientRect();
            if (box.width > 0) tops.push(Math.round(box.top));
        }
        const counts = {};
        tops.forEach(t => { counts[t] = (counts[t] || 0) + 1; });
        return Object.values(counts);
    }""")
    assert min(lines) > 1, lines


def test_language_switch_marks_the_current_language(page, live) -> None:
    """R-L1: the switch marks 中文 as current (not a link); choosing English reloads the page in English
    and marks English."""
    page.goto(live.base + "/login?next=%2Faccount%2Fapps")
    current = page.locator("nav.lang [aria-current='true']")
    assert current.inner_text() == "中文" and page.locator("nav.lang a", has_text="中文").count() == 0
    page.locator("nav.lang a", has_text="English").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("nav.lang [aria-current='true']").inner_text() == "English"
    assert "next=%2Faccount%2Fapps" in page.url


def test_skip_link_is_the_first_tab_stop_and_moves_focus_to_main(page, live) -> None:
    """R-L1: on a page that puts focus nowhere itself, the first Tab reaches the skip link (visible when
    focused); Enter moves focus to the main content."""
    page.goto(live.base + "/account/no-such-page")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator("a.skip-link").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def _contrast(a: str, b: str) -> float:
    def luminance(rgb: str) -> float:
        values = [int(x) / 255 for x in re.findall(r"\d+(?:\.\d+)?", rgb)[:3]]
        lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in values]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_focus_ring_has_3_to_1_contrast_with_page_and_button(page, live) -> None:
    """R-L1: the keyboard focus ring on the sign-in button is at least 2 px and 3:1 against both the
    page behind it and the button's own colour."""
    page.goto(live.base + "/login")
    button = page.locator("form:has(input[name=password]) [type=submit]")
    page.locator("input[name=password]").focus()
    page.keyboard.press("Tab")
    assert button.evaluate("b => b === document.activeElement")
    style = button.evaluate("""b => { const s = getComputedStyle(b);
        return {ring: s.outlineColor, width: parseFloat(s.outlineWidth), button: s.backgroundColor,
                page: getComputedStyle(b.closest('.card')).backgroundColor}; }""")
    assert style["width"] >= 2
    assert _contrast(style["ring"], style["page"]) >= 3, style
    assert _contrast(style["ring"], style["button"]) >= 3, style
