"""Fixtures for mail and SMS: a real SMTP server on loopback (aiosmtpd) whose mailbox a test reads,
and a way to run the app with other sender settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from notify_helpers import Mailbox, SmtpServer, free_port


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 (no TLS; it accepts PLAIN/LOGIN for SMTP_USER without TLS)."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=mailbox.authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield SmtpServer(port, mailbox)
    finally:
        controller.stop()


@pytest.fixture
def use_settings(app, monkeypatch) -> Callable[..., None]:
    """Run the app with some settings changed for this test (senders are built from them at send time)."""

    def change(**changes: Any) -> None:
        monkeypatch.setitem(app.extensions, "idp.settings", dataclasses.replace(app.extensions["idp.settings"],
                                                                                **changes))

    return change
