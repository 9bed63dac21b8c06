"""Translations: every user-facing text has a zh-CN translation, the zh-TW catalogue is the
conversion of it, and the compiled catalogues are fresh."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from gateway.i18n import DEFAULT_LOCALE, LOCALES, TRADITIONAL_LOCALE, TRANSLATIONS, best_locale
from tools.traditional import po_path, rendered, traditional

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


def test_the_traditional_catalogue_is_the_conversion_of_the_simplified_one() -> None:
    """Nobody edits zh_Hant_TW by hand, and nobody forgets to convert after editing zh_Hans_CN."""
    with open(CATALOGUE / "messages.po", "rb") as fh:
        simplified = read_po(fh, locale=DEFAULT_LOCALE)
    made = rendered(traditional(simplified))
    assert po_path(TRADITIONAL_LOCALE).read_bytes() == made, "run ./run i18n"
    with open(po_path(TRADITIONAL_LOCALE), "rb") as fh:
        converted = {m.id: m.string for m in read_po(fh) if m.id}
    # Words, not only characters (OpenCC's Taiwan phrases), and Chinese quotation marks.
    assert converted["Copy link"] == "複製連結", converted["Copy link"]
    assert "「" in converted["Tap ··· in the top right corner, then choose “Open in Browser”."]
    # Taiwan's words where OpenCC keeps the mainland's (tools/traditional.py TAIWAN_TERMS).
    assert not [text for text in converted.values() if "賬號" in text or "二維碼" in text]
    assert not [text for text in converted.values() if "髮" in text]  # 被发放, 被发布: 發, not hair
    assert converted["Scan the QR code"] == "掃描 QR Code", converted["Scan the QR code"]
    # Clicks counted are 點擊; a guide's "tap" keeps 點選.
    clicks_per_hour = converted["Clicks per hour (UTC)"]
    assert clicks_per_hour == "每小時點擊（UTC）", clicks_per_hour
    assert converted["Tap ··· in the top right corner, then choose “Open in Browser”."].startswith(
        "點選右上角"
    )
    # Visiting a page is 造訪 (the busy page, going on to a site); access keeps 訪問.
    assert converted["We're very busy right now"] == "目前造訪人數較多"
    assert "繼續造訪" in converted["Open this link to continue to %(host)s."]
    assert converted["Not allowed"] == "無權訪問"
    # "By way of" is 透過 (the revoked link's page).
    assert (
        "透過此連結" in converted["The person who shared it can no longer invite with this link."]
    )
    # Chinese punctuation around the console's labels, counts and lists.
    assert converted["%(label)s: %(value)s"] == "%(label)s：%(value)s"
    assert converted["%(name)s (%(n)s)"] == "%(name)s（%(n)s）"
    assert converted[", "] == "、"


@pytest.mark.parametrize("locale", [locale for locale in LOCALES if locale != "en"])
def test_compiled_catalogue_matches_the_po_file(locale: str) -> None:
    directory = TRANSLATIONS / locale / "LC_MESSAGES"
    with open(directory / "messages.po", "rb") as fh:
        po = read_po(fh)
    compiled = io.BytesIO()
    write_mo(compiled, po)
    assert (directory / "messages.mo").read_bytes() == compiled.getvalue(), "run ./run i18n"


def test_accept_language_picks_the_locale() -> None:
    cases = {
        "zh-CN,zh;q=0.9": "zh_Hans_CN",
        "zh": "zh_Hans_CN",
        "zh-SG": "zh_Hans_CN",
        "zh-Hans-CN": "zh_Hans_CN",
        # Taiwan, Hong Kong and Macao read Traditional characters.
        "zh-TW": "zh_Hant_TW",
        "zh-HK,zh;q=0.9": "zh_Hant_TW",
        "zh-MO": "zh_Hant_TW",
        "zh-Hant-TW": "zh_Hant_TW",
        "zh_TW": "zh_Hant_TW",
        "yue-HK": "zh_Hant_TW",
        "zh-yue": "zh_Hant_TW",
        "en-GB,en;q=0.8": "en",
        # The most preferred language with a catalogue wins, whether its tag matched whole or
        # shortened (werkzeug's best_match preferred any whole match: this was Chinese).
        "en-US,zh-TW;q=0.5": "en",
        "zh-TW;q=0, en": "en",
        "fr-FR": "zh_Hans_CN",
        "": "zh_Hans_CN",
        "*": "zh_Hans_CN",
        "de, en;q=0.5": "en",
    }
    for header, locale in cases.items():
        assert best_locale(parse_accept_header(header, LanguageAccept)) == locale, header
