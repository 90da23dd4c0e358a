"""Locale choice: ``ui_locales`` / ``lang`` parameter (remembered) → account → zh_Hant_TW.

zh-TW comes first for everyone (SPEC: the interface is Traditional Chinese first); a person
switches to English with the language link or a relying party's ``ui_locales``. The browser's
Accept-Language is deliberately not consulted before the default: school computers often
run English-language browsers for pupils who read Chinese.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import tempfile
import zoneinfo
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, has_app_context, request, session
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

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


PERSON_CHOICE = "locale_chosen"


def _choice_in_request() -> str | None:
    """The language this request asks for, remembered for the rest of the visit.

    A ``lang`` link is the person's own choice and wins for good; a relying party's ``ui_locales``
    is a hint that applies only until the person has chosen. Remembered at once (not only when a
    page is rendered): ``/oauth/authorize?ui_locales=en`` answers with a redirect to the login
    page, and the whole sign-in must then stay in English.
    """
    chosen = choose(request.args.get("lang"))
    if chosen:
        session["locale"] = chosen
        session[PERSON_CHOICE] = True
        return chosen
    hinted = choose(request.args.get("ui_locales"))
    if hinted and not session.get(PERSON_CHOICE):
        session["locale"] = hinted
        return hinted
    return None


def select_locale() -> str:
    try:
        asked = _choice_in_request()
    except RuntimeError:  # no request: a CLI command or a mail rendered outside one
        return settings().default_locale
    if asked:
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


# -- WTForms' own messages ("This field is required.") -----------------------------------------
def _wtforms_catalogue_name(locale: Any) -> str:
    """WTForms ships ``zh`` (Simplified) and ``zh_TW`` (Traditional); gettext's fallback from
    ``zh_Hant_TW`` is ``zh``, which would show pupils Simplified Chinese. Pick by script/region."""
    if locale.language == "zh":
        hant = locale.script == "Hant" or locale.territory in ("TW", "HK", "MO")
        return "zh_TW" if hant else "zh"
    return str(locale)


@functools.cache
def _wtforms_catalogue(name: str) -> Any:
    from babel import support
    from wtforms.i18n import messages_path

    return support.Translations.load(messages_path(), [name], domain="wtforms")


class WTFormsTranslations:
    """gettext for WTForms' built-in messages in the language of the page being rendered."""

    def _catalogue(self) -> Any:
        from flask import has_request_context
        from flask_babel import get_locale

        locale = get_locale() if has_request_context() else None
        return _wtforms_catalogue(_wtforms_catalogue_name(locale)) if locale is not None else None

    def gettext(self, string: str) -> str:
        catalogue = self._catalogue()
        return string if catalogue is None else catalogue.gettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        catalogue = self._catalogue()
        if catalogue is None:
            return singular if n == 1 else plural
        return catalogue.ngettext(singular, plural, n)


_WTFORMS_TRANSLATIONS = WTFormsTranslations()


def _form_translations(meta: Any, form: Any) -> WTFormsTranslations:
    return _WTFORMS_TRANSLATIONS


# -- dates and times ---------------------------------------------------------------------------
def time_zone() -> dt.tzinfo:
    return zoneinfo.ZoneInfo(settings().time_zone)


def local_time(value: Any, seconds: bool = False) -> str:
    """A stored time (UTC datetime, ISO string or Unix seconds) as people read it: in the
    configured zone (Asia/Taipei), ``2026-12-02 10:47``. Naive datetimes (SQLite) are UTC."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        when = dt.datetime.fromtimestamp(value, dt.UTC)
    elif isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    elif isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        return value.isoformat()
    else:
        return str(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(time_zone()).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def time_zone_label() -> str:
    """The zone times are shown in, said once on a page that lists times: ``臺北時間 (UTC+8)``."""
    from flask_babel import gettext

    name = settings().time_zone
    offset = dt.datetime.now(time_zone()).utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    utc = f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
    friendly = gettext("Taipei time") if name == "Asia/Taipei" else name
    return f"{friendly} ({utc})"


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


def _page_translations() -> Any:
    """Flask-Babel's catalogue for the locale in force, looked up once per locale and request.

    A page calls ``_()`` a few dozen times, and Flask-Babel's own callables find the domain, the
    locale and the cache again through the request context every time: a quarter of a page's
    rendering. The catalogue is kept beside Flask-Babel's per-request state (which ``refresh()``
    clears) and only for the locale it was made for, so ``force_locale`` (a mail in the
    recipient's language) still gets its own."""
    from flask_babel import get_translations

    state = g.get("_flask_babel") if has_app_context() else None
    if state is None:
        return get_translations()
    locale = getattr(state, "babel_locale", None)
    cached = getattr(state, "idp_translations", None)
    if locale is not None and cached is not None and cached[0] is locale:
        return cached[1]
    translations = get_translations()
    state.idp_translations = (getattr(state, "babel_locale", None), translations)
    return translations


@pass_context
def _template_gettext(context: Context, string: str, **variables: Any) -> str:
    """Jinja's new-style ``gettext``, translating directly. Jinja's own ``_`` resolves ``gettext``
    through the context, which wraps the installed callable, each step a ``Context.call``: three
    calls deep for every string, a tenth of the login page's rendering. Same semantics: the
    translation is markup-safe where autoescaping is on and always a format string (``%%`` for %)."""
    rv = _page_translations().ugettext(string)
    if context.eval_ctx.autoescape:
        rv = Markup(rv)  # noqa: S704 (our own catalogue, as Jinja marks it; the variables are escaped by %)
    return rv % variables


@pass_context
def _template_ngettext(context: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
    """``ngettext`` likewise, with ``num`` offered to the format as Jinja's own does."""
    variables.setdefault("num", num)
    rv = _page_translations().ungettext(singular, plural, num)
    if context.eval_ctx.autoescape:
        rv = Markup(rv)  # noqa: S704 (our own catalogue, as Jinja marks it; the variables are escaped by %)
    return rv % variables


def init_app(app: Flask) -> None:
    compile_catalogues(Path(app.root_path) / "translations")
    from flask_wtf import FlaskForm

    # Every form (whoever writes it) gets WTForms' messages in Traditional Chinese, not Simplified.
    FlaskForm.Meta.get_translations = _form_translations  # type: ignore[method-assign]
    app.add_template_filter(local_time, "local_time")
    app.add_template_global(time_zone_label, "time_zone_label")
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _page_translations().ugettext(s),
        ngettext=lambda s, p, n: _page_translations().ungettext(s, p, n),
        pgettext=lambda c, s: _page_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _page_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    # The same, one call deep (see ``_template_gettext``): ``_`` and ``gettext`` in templates.
    app.jinja_env.globals.update(_=_template_gettext, gettext=_template_gettext, ngettext=_template_ngettext)

    @app.before_request
    def _remember_locale() -> None:
        if "lang" in request.args or "ui_locales" in request.args:
            _choice_in_request()

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
        current = "zh_Hant_TW" if loc and loc.language == "zh" else "en"
        return {"html_lang": "zh-Hant-TW" if current == "zh_Hant_TW" else "en", "lang_url": lang_url,
                "current_locale": current}
