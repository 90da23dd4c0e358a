"""Live servers for the end-to-end tests (issue 2 items 13–14; "Done when").

One PostgreSQL database of its own (``<test database>_e2e``, recreated per run), Redis with a
store prefix of its own, a temporary keys directory, migrated with ``flask db upgrade`` and
loaded with ``flask demo load`` in subprocesses, then served by ``flask serve`` (Granian) on a free loopback
port with ``IDP_ISSUER`` matching that port. Skipped on the embedded backend (the live tests
are about several processes sharing PostgreSQL and Redis).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import (
    Server,
    demo_rp_process,
    env_without_proxies,
    flask_cli,
    free_port,
    recreate_database,
    start_server,
)

BACKEND = os.environ.get("IDP_TEST_BACKEND", "postgres")
PG_URL = os.environ.get("IDP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND == "postgres":
        return
    skip = pytest.mark.skip(reason="live tests run on PostgreSQL + Redis only")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)



@pytest.fixture(scope="session")
def live_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live")


@pytest.fixture(scope="session")
def rp_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def live_env(live_dir: Path, rp_port: int) -> dict[str, str]:
    """The environment every live process (servers and CLI) shares, minus the issuer's port."""
    port = free_port()
    env = env_without_proxies()
    env.update(
        IDP_CONFIG="testing",
        IDP_ISSUER=f"http://127.0.0.1:{port}",
        IDP_DATABASE_URL=recreate_database(PG_URL, "e2e"),
        IDP_REDIS_URL=REDIS_URL,
        IDP_STORE_PREFIX=f"e2e{os.getpid()}:",
        IDP_KEYS_DIR=str(live_dir / "keys"),
        IDP_DEMO_DATA="true",
        IDP_LOG_LEVEL="INFO",  # audit lines too: the browser test searches the logs for national IDs
        E2E_PORT=str(port),
    )
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "demo", "load", "--rp-url", f"http://127.0.0.1:{rp_port}",
              "--env-file", str(live_dir / "demo_rp.env"))
    return env


@pytest.fixture(scope="session")
def live_server(live_env: dict[str, str], live_dir: Path) -> Iterator[Server]:
    """``flask serve`` (1 worker) on the issuer's port."""
    server = start_server(live_env, int(live_env["E2E_PORT"]), live_dir / "server-a.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def second_server(live_env: dict[str, str], live_server: Server, live_dir: Path) -> Iterator[Server]:
    """Another server process, same database, store and keys, same issuer: two nodes behind one name."""
    server = start_server(live_env, free_port(), live_dir / "server-b.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def demo_rp(live_server: Server, live_dir: Path, rp_port: int, live_env: dict[str, str]) -> Iterator[str]:
    """The demo relying party (``python -m clients.demo_rp``) on its own port, reading demo load's env file."""
    env = dict(live_env, DEMO_RP_ENV_FILE=str(live_dir / "demo_rp.env"))
    with demo_rp_process(env, f"http://127.0.0.1:{rp_port}", live_dir / "demo-rp.log") as base:
        yield base


@pytest.fixture(scope="session")
def demo_client(live_dir: Path) -> dict[str, str]:
    """The demo client's registration as ``demo load`` wrote it (id, secret, base URL)."""
    out = {}
    for line in (live_dir / "demo_rp.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return {"client_id": out["DEMO_RP_CLIENT_ID"], "client_secret": out["DEMO_RP_CLIENT_SECRET"],
            "redirect_uri": out["DEMO_RP_BASE_URL"] + "/callback", "post_logout": out["DEMO_RP_BASE_URL"] + "/"}
