"""Pages rendered once and filled in per request: the busiest page's HTML without Jinja (issue 11).

The login page a browser meets on its way to an app (no error, nothing typed, no captcha, no
message to show) differs between two requests of the same language only in a handful of values:
the CSRF token, where the sign-in goes next, and the links that carry it. Rendering it through the
layout, the form macros and WTForms' widgets was half of that request's CPU. So such a page is
rendered once per language and shape with a placeholder (a *slot*) for each of those values, split
at the slots, and each later request joins the parts with its own values, escaped as Jinja would
have escaped them.

A slot stands for a whole value the template prints with ``{{ … }}``, never for something the
template computes with or branches on: the view passes ``slot("name")`` where the value would go
and the real value to ``fill``. What decides the shape (the language, which counties are shown and
their names) belongs in the key. Pages with anything else per person (errors, a captcha, flashed
messages, a prefilled account) are rendered the ordinary way.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping

from markupsafe import escape

_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use characters: Jinja's escaping leaves them alone


def slot(name: str) -> str:
    """The placeholder for the value called ``name``."""
    return f"{_OPEN}{name}{_CLOSE}"


class SlottedPage:
    """A rendered page cut at its slots: literal text and slot names, alternating."""

    __slots__ = ("_parts", "slots")

    def __init__(self, html: str) -> None:
        parts: list[tuple[bool, str]] = []
        rest = html
        while (start := rest.find(_OPEN)) >= 0:
            end = rest.index(_CLOSE, start)
            parts += [(False, rest[:start]), (True, rest[start + 1:end])]
            rest = rest[end + 1:]
        parts.append((False, rest))
        self._parts = tuple(parts)
        self.slots = frozenset(text for is_slot, text in parts if is_slot)

    def fill(self, values: Mapping[str, str]) -> str:
        """The page with each slot's value, HTML-escaped (a value missing here is a bug: KeyError)."""
        return "".join(str(escape(values[text])) if is_slot else text for is_slot, text in self._parts)


class PageCache:
    """Slotted pages by key, per app. Bounded: the keys are languages and configured shapes, a few
    dozen at most; if something ever made them many, the cache starts over rather than grow."""

    def __init__(self, limit: int = 64) -> None:
        self._pages: dict[Hashable, SlottedPage] = {}
        self._limit = limit

    def page(self, key: Hashable, render: Callable[[], str]) -> SlottedPage:
        page = self._pages.get(key)
        if page is None:
            if len(self._pages) >= self._limit:
                self._pages.clear()
            page = self._pages[key] = SlottedPage(render())
        return page
