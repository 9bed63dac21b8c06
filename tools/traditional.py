"""Write the Traditional Chinese catalogue from the Simplified one, with OpenCC.

The Simplified catalogue (zh_Hans_CN) is the one people translate; the Traditional one
(zh_Hant_TW, for zh-TW, zh-HK and zh-MO readers) is made from it by OpenCC's ``s2twp``
conversion (characters and Taiwan's usual words: 軟體, 資訊, 連結...), never edited by hand, so
the two cannot drift: ``./run i18n`` runs this after merging new texts, and
tests/test_i18n.py checks the committed catalogue is what this writes.

    .venv/bin/python tools/traditional.py
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import opencc
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.i18n import DEFAULT_LOCALE, TRADITIONAL_LOCALE, TRANSLATIONS  # noqa: E402

#: OpenCC's configuration: Simplified to Traditional (Taiwan standard) with Taiwan phrases.
CONVERSION = "s2twp"
#: Quotation marks as Traditional Chinese writes them (OpenCC converts words, not punctuation).
QUOTES = str.maketrans({"“": "「", "”": "」"})
#: Words OpenCC's phrase list leaves in their mainland form, as Taiwan's apps say them.
TAIWAN_TERMS = {"賬號": "帳號", "郵箱": "電子郵件", "二維碼": "QR Code"}
LATIN_BESIDE_HAN = re.compile(r"(?<=[\u4e00-\u9fff])(?=QR Code)|(?<=QR Code)(?=[\u4e00-\u9fff])")


def traditional(simplified: Catalog) -> Catalog:
    """``simplified`` with every translation converted; ids, flags and comments as they are."""
    converter = opencc.OpenCC(CONVERSION)

    def convert(text: str) -> str:
        converted = str(converter.convert(text)).translate(QUOTES)
        for mainland, taiwan in TAIWAN_TERMS.items():
            converted = converted.replace(mainland, taiwan)
        # A space between Latin words and Chinese characters, as Taiwan's typesetting has it.
        return LATIN_BESIDE_HAN.sub(" ", converted)

    catalog = copy.deepcopy(simplified)
    catalog.locale = Locale.parse(TRADITIONAL_LOCALE)
    catalog.header_comment = (
        "# Traditional Chinese translations for refgate, made from the Simplified ones by\n"
        "# tools/traditional.py (OpenCC s2twp): do not edit, edit zh_Hans_CN and run ./run i18n."
    )
    catalog.language_team = "zh_Hant_TW (converted from zh_Hans_CN)"
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.string, (list, tuple)):
            message.string = tuple(convert(text) for text in message.string)
        elif message.string:
            message.string = convert(message.string)
    return catalog


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def rendered(catalog: Catalog) -> bytes:
    from io import BytesIO

    out = BytesIO()
    write_po(out, catalog, width=100, omit_header=False)
    return out.getvalue()


def main() -> None:
    with open(po_path(DEFAULT_LOCALE), "rb") as fh:
        simplified = read_po(fh, locale=DEFAULT_LOCALE)
    target = po_path(TRADITIONAL_LOCALE)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(rendered(traditional(simplified)))
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
