"""Server-side state of a step-by-step flow (apply, recover, activate; later the proxy platform's forms).

The steps' answers live in the service store (Redis in production: any process serves any step)
under a random id that the person's form session holds; nothing personal goes into a URL or a
cookie, back and reload simply show a step again, and the state expires on its own
(``WIZARD_LIFETIME``). A flow that finishes, or restarts, clears it. Each step declares what it needs
from earlier steps (``require``); a person who arrives at a later step without them (a bookmark, an
expired state) is sent back to the first step that is missing, never shown an error.

A national ID never enters the state: a step that identifies a person keeps the person's id and the
masked number for display.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from flask import session

from idp.extensions import store

WIZARD_LIFETIME = 1800  # seconds: long enough to fetch a school code from a parent, short enough to forget


class StepMissing(Exception):
    """A step was reached before the steps it builds on; ``step`` names the first missing one."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


class Wizard:
    """The state of one flow (``name``) for this browser: a dict of JSON-able values."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._state: dict[str, Any] | None = None

    @property
    def _session_key(self) -> str:
        return f"wizard.{self.name}"

    def _key(self, wid: str) -> str:
        return f"wizard:{self.name}:{wid}"

    @property
    def state(self) -> dict[str, Any]:
        """What earlier steps stored ({} when the flow is new or its state has expired)."""
        if self._state is None:
            wid = session.get(self._session_key)
            self._state = (store().get_json(self._key(wid)) if wid else None) or {}
        return self._state

    def get(self, key: str, default: Any = None) -> Any:
        return self.state.get(key, default)

    def update(self, **values: Any) -> None:
        """Store values (and drop those set to None), renewing the lifetime."""
        state = dict(self.state)
        for key, value in values.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        wid = session.get(self._session_key)
        if not wid:
            wid = session[self._session_key] = secrets.token_urlsafe(16)
        store().set_json(self._key(wid), state, WIZARD_LIFETIME)
        self._state = state

    def forget(self, *keys: str) -> None:
        """Drop answers of later steps (an earlier step changed, so they no longer hold)."""
        if any(k in self.state for k in keys):
            self.update(**dict.fromkeys(keys))

    def clear(self) -> None:
        """End the flow: its state is gone from the store and the session."""
        wid = session.pop(self._session_key, None)
        if wid:
            store().delete(self._key(wid))
        self._state = {}

    def require(self, steps: Iterable[tuple[str, str]]) -> None:
        """Raise ``StepMissing`` naming the first (step, key) whose key is not in the state yet."""
        for step, key in steps:
            if key not in self.state:
                raise StepMissing(step)
