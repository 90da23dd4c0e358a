"""Helpers for the browser tests: the live provider, axe-core, the captcha's answer, the outbox.

The provider runs as production runs it (``flask serve`` on PostgreSQL + Redis, demo data loaded) on
a database of its own, ``<test database>_browser``. Pages are driven by Playwright on Debian's
Chromium (no ``playwright install``). axe-core comes from npm (``make browser-deps`` puts it in
``node_modules/``); it is served to the page from the provider's own origin through a Playwright
route, so the pages' strict CSP stays on while axe runs (a CSP violation is itself a finding).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # e2e_helpers: start_server, flask_cli, CHROMIUM_ARGS

from e2e_helpers import CHROMIUM_ARGS, Server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_PATH = "/__browser-tests__/axe.min.js"  # answered by a Playwright route, never by the provider
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
VIEWPORT = {"width": 1024, "height": 768}


def demo_password(username: str) -> str:
    """The demo account's password as ``flask demo load`` sets it."""
    from idp.demo.commands import DEMO_ACCOUNTS

    return next(a.password for a in DEMO_ACCOUNTS if a.username == username)


@dataclass
class Live:
    """The running provider: its base URL, its processes' environment, and an in-process app on the
    same database and store (to read what a test needs, as an operator's shell would)."""

    server: Server
    env: dict[str, str]
    demo_client_id: str = "demo-rp"
    demo_redirect_uri: str = ""

    @property
    def base(self) -> str:
        return self.server.base

    @cached_property
    def app(self) -> Any:
        from idp import create_app

        e = self.env
        return create_app({"IDP_CONFIG": "testing", "issuer": e["IDP_ISSUER"], "database_url": e["IDP_DATABASE_URL"],
                           "redis_url": e["IDP_REDIS_URL"], "store_prefix": e["IDP_STORE_PREFIX"],
                           "keys_dir": e["IDP_KEYS_DIR"], "demo_data": True})

    def __enter__(self) -> Live:
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the server; empty the store and close the in-process app's connections, if it was used."""
        self.server.stop()
        if "app" in self.__dict__:
            with self.app.app_context():
                from idp.extensions import db

                self.app.extensions["idp.store"].flush()
                db.engine.dispose()

    def authorize_url(self, **extra: str) -> str:
        """A sign-in request of the demo app (PKCE), as the demo app would send it."""
        from e2e_helpers import authorize_url

        return authorize_url(self.base, self.demo_client_id, self.demo_redirect_uri, **extra)[0]


def axe(page: Any) -> list[dict[str, Any]]:
    """Run axe-core's WCAG 2.1 A and AA rules on the page as it is now; return the violations
    (``id``, ``impact``, ``help``, ``nodes`` with their ``target`` and ``failureSummary``)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        origin = page.evaluate("() => location.origin")
        page.add_script_tag(url=origin + AXE_PATH)
    result = page.evaluate("""async (tags) => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target, html: n.html, failureSummary: n.failureSummary}))}));
    }""", WCAG_AA)
    return result


def describe(violations: list[dict[str, Any]]) -> str:
    """Violations as lines a person can act on."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:5]:
            lines.append(f"    {node['target']}: {node['html'][:160]}")
    return "\n".join(lines)


def install_axe_route(context: Any, base: str) -> None:
    """Serve axe-core at ``base + AXE_PATH`` from node_modules (same origin: the CSP allows it)."""
    if not AXE_JS.exists():
        pytest.fail(f"axe-core is missing ({AXE_JS}): run `make browser-deps` "
                    "(npm install --no-save axe-core@4)")
    body = AXE_JS.read_bytes()
    context.route(base + AXE_PATH, lambda route: route.fulfill(status=200, body=body,
                                                               content_type="application/javascript"))


def csp_violations(messages: list[str]) -> list[str]:
    return [m for m in messages if "Content Security Policy" in m]


HTML_LANG = {"zh-TW": "zh-Hant-TW", "en": "en"}


def with_lang(url: str, locale: str) -> str:
    """The page in ``locale`` (the language switch's parameter)."""
    return f"{url}{'&' if '?' in url else '?'}lang={locale}"


def check_page(page: Any, axe_run: Any, locale: str = "zh-TW") -> None:
    """The page is in the expected language, axe finds nothing, the CSP refused nothing."""
    assert page.locator("html").get_attribute("lang") == HTML_LANG[locale], page.url
    violations = axe_run(page)
    assert not violations, f"{page.url}\n{describe(violations)}"
    assert not csp_violations(page.console_messages), page.console_messages


def captcha_answer(live: Live, page: Any) -> str:
    """The answer of the captcha on the page (its challenge id from ``[data-captcha-id]``), read from the
    store the way only tests may (``captcha.answer_for_tests``, env ``testing`` only)."""
    try:
        from idp.security import captcha
    except ImportError:  # pragma: no cover - the captcha is being written at the same time
        pytest.skip("idp.security.captcha is not there yet")
    challenge = page.locator("[data-captcha-id]").first.get_attribute("value")
    assert challenge, "no captcha on the page"
    with live.app.app_context():
        answer = captcha.answer_for_tests(challenge)
    assert answer, f"captcha {challenge} is unknown, used or expired"
    return answer


def outbox(live: Live) -> list[Any]:
    """The mail and text messages the live provider sent (its ``outbox`` sender), newest first."""
    try:
        from idp import notify
    except ImportError:  # pragma: no cover - notify is being written at the same time
        pytest.skip("idp.notify is not there yet")
    with live.app.app_context():
        return list(notify.outbox())


def settle(page: Any) -> None:
    """After a form post: wait for the page it leads to. A post that leads on to an app (or to
    /oauth/) is answered with a page that continues there by itself (a meta refresh, not a
    redirect: idp/security/headers.py, since Chromium checks CSP form-action on every redirect
    after a post); "network idle" (nothing loading for half a second) is past that page too."""
    page.wait_for_load_state("networkidle")


def sign_in(page: Any, live: Live, username: str, next_path: str = "/") -> None:
    """Sign in through the login page, as a person types it."""
    from urllib.parse import quote

    page.goto(f"{live.base}/login?force=1&next={quote(next_path, safe='')}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", demo_password(username))
    page.locator("form:has(input[name=password]) [type=submit]").click()
    settle(page)
    assert "/login" not in page.url, f"sign-in as {username} failed: {page.url}"


__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "VIEWPORT", "Live", "axe", "captcha_answer", "csp_violations", "describe",
           "install_axe_route", "outbox", "settle", "sign_in"]
