"""Locale choice: ``ui_locales`` / ``lang`` parameter (remembered) → account → zh_Hant_TW.

zh-TW comes first for everyone (SPEC: the interface is Traditional Chinese first); a person
switches to English with the language link or a relying party's ``ui_locales``. The browser's
Accept-Language is deliberately not consulted before the default: school computers often
run English-language browsers for pupils who read Chinese.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from flask import Flask, current_app, g, request, session

from idp.extensions import settings

_ALIASES = {
    "zh": "zh_Hant_TW", "zh-tw": "zh_Hant_TW", "zh_tw": "zh_Hant_TW", "zh-hant": "zh_Hant_TW",
    "zh-hant-tw": "zh_Hant_TW", "zh_hant_tw": "zh_Hant_TW", "en": "en", "en-us": "en", "en-gb": "en",
    "en_us": "en",
}


def normalise(tag: str) -> str | None:
    """Map a BCP 47 tag (``zh-TW``, ``en-US``) to one of our locales, or None."""
    tag = tag.strip().lower()
    if tag in _ALIASES:
        return _ALIASES[tag]
    if tag.startswith("en"):
        return "en"
    if tag.startswith("zh") and ("tw" in tag or "hant" in tag):
        return "zh_Hant_TW"
    return None


def choose(ui_locales: str | None) -> str | None:
    """First supported locale in a space-separated ``ui_locales`` list."""
    for tag in (ui_locales or "").split():
        found = normalise(tag)
        if found in settings().locales:
            return found
    return None


def select_locale() -> str:
    try:
        asked = choose(request.args.get("ui_locales") or request.args.get("lang"))
    except RuntimeError:
        return settings().default_locale
    if asked:
        session["locale"] = asked
        return asked
    if session.get("locale") in settings().locales:
        return session["locale"]
    loader = current_app.extensions.get("idp.current_account")
    account = loader() if loader is not None else None
    if account is not None and getattr(account, "locale", None) in settings().locales:
        return account.locale
    return settings().default_locale


def lang_url(tag: str) -> str:
    """This page in another language: the same path and query (a sign-in request keeps all its
    parameters), with ``lang`` replaced and any ``ui_locales`` dropped so the choice wins."""
    from urllib.parse import urlencode

    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("lang", "ui_locales")]
    args.append(("lang", tag))
    return f"{request.path}?{urlencode(args)}"


def compile_catalogues(directory: Path) -> None:
    """Compile each ``messages.po`` whose ``.mo`` is missing or older, so a fresh clone shows
    Chinese with no extra step (.mo files are build output, not committed). Written to a
    temporary file and renamed, so parallel workers starting together never read half a file."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in directory.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as fh:
            catalogue = read_po(fh)
        try:
            fd, tmp = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
            with os.fdopen(fd, "wb") as out:
                write_mo(out, catalogue)
            os.replace(tmp, mo)
        except OSError as exc:  # a read-only install: serve what is there rather than not start
            logging.getLogger(__name__).warning("cannot compile %s: %s", po, exc)


def init_app(app: Flask) -> None:
    compile_catalogues(Path(app.root_path) / "translations")

    @app.before_request
    def _fresh_request_caches() -> None:
        # Flask-Babel and Flask-WTF cache per-request values on the app context; when one app
        # context spans several requests (the test suite, CLI tools) they must not leak across.
        from flask_babel import refresh

        refresh()
        g.pop("csrf_token", None)

    @app.context_processor
    def _locale_context() -> dict:
        from flask_babel import get_locale

        loc = get_locale()
        return {"html_lang": "zh-Hant-TW" if loc and loc.language == "zh" else "en", "lang_url": lang_url}
