"""The zh_Hant_TW catalogue covers every user-facing string (DESIGN rule 14: the catalogue check)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
METHODS = [("idp/**.py", "python"), ("idp/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None,
            "lazy_ngettext": (1, 2)}


def test_every_string_has_a_traditional_chinese_translation() -> None:
    """R-L1: zh-TW first: every string in idp/ is translated in the zh_Hant_TW catalogue."""
    po_path = ROOT / "idp/translations/zh_Hant_TW/LC_MESSAGES/messages.po"
    with po_path.open("rb") as fh:
        catalogue = read_po(fh)
    missing = set()
    for filename, _lineno, message, _comments, _context in extract_from_dir(str(ROOT), METHODS, keywords=KEYWORDS):
        msgid = message[0] if isinstance(message, tuple) else message  # plural forms: the singular id
        entry = catalogue.get(msgid)
        translated = entry.string if entry is not None else ""
        if not (translated[0] if isinstance(translated, tuple) else translated):
            missing.add(f"{filename}: {msgid}")
    assert not missing, ("untranslated strings; see idp/translations/README.md to update the catalogue:\n"
                         + "\n".join(sorted(missing)))


def test_catalogue_compiles_when_missing_or_stale(tmp_path) -> None:
    """R-N1: a fresh clone (no .mo) gets a compiled catalogue at start-up, and an edited .po is recompiled."""
    import os
    import shutil

    from babel.messages.mofile import read_mo

    from idp.i18n import compile_catalogues

    target = tmp_path / "zh_Hant_TW" / "LC_MESSAGES"
    target.mkdir(parents=True)
    po = target / "messages.po"
    shutil.copy(ROOT / "idp/translations/zh_Hant_TW/LC_MESSAGES/messages.po", po)
    compile_catalogues(tmp_path)
    mo = target / "messages.mo"
    with mo.open("rb") as fh:
        assert read_mo(fh).get("Sign in").string == "登入"
    os.utime(mo, (1, 1))  # an old .mo, as after `git pull` brought a newer .po
    compile_catalogues(tmp_path)
    assert mo.stat().st_mtime >= po.stat().st_mtime
