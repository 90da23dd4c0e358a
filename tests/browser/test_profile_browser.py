"""The person's home, a backup e-mail proved by its code, a new password, an app removed, in Chromium (R-C7)."""

from __future__ import annotations

import re

from browser_helpers import describe, outbox
from e2e_helpers import flask_cli

PASSWORD = "Kite-River-Window-7"
NEW_PASSWORD = "Seven green kites fly"


def _sign_in(page, live, username: str, password: str) -> None:
    page.goto(f"{live.base}/login?force=1&next=%2Faccount%2F")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.locator("form:has(input[name=password]) [type=submit]").click()
    page.wait_for_load_state()


def test_a_person_verifies_a_backup_email_and_changes_the_password(live, page, axe) -> None:
    """R-C7, R-L1: /account/ → change e-mail → code from the outbox → verified; new password works; axe passes."""
    flask_cli(live.env, "accounts", "create", "profile.walker", "--password-stdin", "--name", "林小華",
              stdin=PASSWORD + "\n")
    _sign_in(page, live, "profile.walker", PASSWORD)
    assert page.url.endswith("/account/")
    assert page.locator("h1").inner_text().startswith("林小華")
    assert axe(page) == [], describe(axe(page))

    page.click("[data-field=email] a")
    page.fill("input[name=value]", "walker@example.edu.tw")
    assert axe(page) == [], describe(axe(page))
    page.locator("form [type=submit]").first.click()
    page.wait_for_load_state()
    assert "/account/contact/email/verify" in page.url
    mail = next(m for m in outbox(live) if m.to == "walker@example.edu.tw")
    code = re.search(r"\b(\d{6})\b", mail.text).group(1)
    page.fill("input[name=code]", "000000")
    page.locator("form [type=submit]").first.click()
    page.wait_for_load_state()
    assert page.evaluate("document.activeElement.id") == "error-summary"  # the error is read out first
    assert axe(page) == [], describe(axe(page))
    page.fill("input[name=code]", code)
    page.locator("form [type=submit]").first.click()
    page.wait_for_load_state()
    assert page.url.endswith("/account/")
    assert "walker@example.edu.tw" in page.inner_text("[data-field=email]")
    assert "已驗證" in page.inner_text("[data-field=email]")

    page.goto(f"{live.base}/account/password?lang=en")
    assert axe(page) == [], describe(axe(page))
    page.fill("input[name=current]", PASSWORD)
    page.fill("input[name=new]", NEW_PASSWORD)
    page.fill("input[name=again]", NEW_PASSWORD)
    page.locator("form [type=submit]").first.click()
    page.wait_for_load_state()
    assert page.url.endswith("/account/")

    other = page.context.browser.new_context(locale="zh-TW").new_page()
    _sign_in(other, live, "profile.walker", NEW_PASSWORD)
    assert other.url.endswith("/account/")
    other.context.close()
