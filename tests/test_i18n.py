"""Translations: every user-facing text has a zh-CN translation; the compiled catalogue is fresh."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from gateway.i18n import DEFAULT_LOCALE, TRANSLATIONS, best_locale

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = TRANSLATIONS / DEFAULT_LOCALE / "LC_MESSAGES"
KEYWORDS = {"_": None, "N_": None, "gettext": None, "lazy_gettext": None}


def source_messages() -> set[str]:
    method_map = [
        ("gateway/**.py", "python"),
        ("detectors/**.py", "python"),
        ("templates/**.html", "jinja2"),
    ]
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalogue() -> dict[str, str]:
    with open(CATALOGUE / "messages.po", "rb") as fh:
        po = read_po(fh)
    assert not po.fuzzy
    return {m.id: m.string for m in po if m.id and not m.fuzzy and isinstance(m.id, str)}


def test_every_source_text_is_translated() -> None:
    translated = catalogue()
    missing = sorted(m for m in source_messages() if not translated.get(m))
    assert missing == [], "run ./run i18n and translate these in messages.po"


def test_compiled_catalogue_matches_the_po_file() -> None:
    with open(CATALOGUE / "messages.po", "rb") as fh:
        po = read_po(fh)
    compiled = io.BytesIO()
    write_mo(compiled, po)
    assert (CATALOGUE / "messages.mo").read_bytes() == compiled.getvalue(), "run ./run i18n"


def test_accept_language_picks_the_locale() -> None:
    cases = {
        "zh-CN,zh;q=0.9": "zh_Hans_CN",
        "zh-TW": "zh_Hans_CN",
        "en-GB,en;q=0.8": "en",
        "fr-FR": "zh_Hans_CN",
        "": "zh_Hans_CN",
        "de, en;q=0.5": "en",
    }
    for header, locale in cases.items():
        assert best_locale(parse_accept_header(header, LanguageAccept)) == locale, header
