"""Browser test fixtures (issue 10 "Done when"): the live provider and a Chromium page.

- ``live``: the provider served by ``flask serve`` (Granian, 1 worker) on PostgreSQL + Redis, on a
  database of its own (``<test database>_browser``, recreated per run) with ``flask demo load``'s data,
  a store prefix and keys directory of its own. Session-scoped: started once.
- ``browser``: Debian's Chromium through Playwright (module-scoped); ``page``: a fresh context (own
  cookies) in zh-TW at a fixed 1024×768 viewport; ``new_page(**context_options)`` for another size.
- ``axe``: ``axe(page)`` → the WCAG 2.1 A + AA violations on the page (browser_helpers.axe).
- ``captcha_answer(live, page)`` and ``outbox(live)`` are plain helpers in browser_helpers.

Every test here is marked ``browser`` and ``live``; on the embedded backend they are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Live, install_axe_route
from browser_helpers import axe as run_axe
from e2e_helpers import env_without_proxies, flask_cli, free_port, recreate_database, start_server

BACKEND = os.environ.get("IDP_TEST_BACKEND", "postgres")
PG_URL = os.environ.get("IDP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.live)
            if BACKEND != "postgres":
                item.add_marker(pytest.mark.skip(reason="browser tests run on PostgreSQL + Redis only"))



@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The provider as production serves it, with the demo data, on its own database and store prefix."""
    workdir = tmp_path_factory.mktemp("browser")
    port, rp_port = free_port(), free_port()
    env = env_without_proxies()
    env.update(
        IDP_CONFIG="testing",
        IDP_ISSUER=f"http://127.0.0.1:{port}",
        IDP_DATABASE_URL=recreate_database(PG_URL, "browser"),
        IDP_REDIS_URL=REDIS_URL,
        IDP_STORE_PREFIX=f"browser{os.getpid()}:",
        IDP_KEYS_DIR=str(workdir / "keys"),
        IDP_DEMO_DATA="true",
        IDP_MAIL_SENDER="outbox",
        IDP_SMS_SENDER="outbox",
        IDP_LOG_LEVEL="WARNING",
    )
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "demo", "load", "--rp-url", f"http://127.0.0.1:{rp_port}", "--env-file", str(workdir / "rp.env"))
    server = start_server(env, port, workdir / "server.log")
    with Live(server=server, env=env, demo_redirect_uri=f"http://127.0.0.1:{rp_port}/callback") as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module: Playwright's sync API cannot start while another instance is
    running, and tests/e2e starts its own; a module-long instance ends before theirs begins."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (make browser-deps installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, live: Live) -> Iterator[Callable[..., Any]]:
    """``new_page(viewport=…, device_scale_factor=…)``: a page in a fresh zh-TW context. Each page
    records the browser console's messages in ``page.console_messages`` (CSP reports land there)."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(**{"locale": "zh-TW", "viewport": VIEWPORT, **options})
        contexts.append(context)
        install_axe_route(context, live.base)
        page = context.new_page()
        page.set_default_timeout(10000)
        messages: list[str] = []
        page.on("console", lambda msg: messages.append(msg.text))
        page.console_messages = messages
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()


@pytest.fixture
def axe() -> Callable[[Any], list[dict[str, Any]]]:
    return run_axe
