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
#: Words OpenCC's phrase list leaves in their mainland form or turns into the wrong sense (its
#: Taiwan phrases are an IT glossary: 对象 "object", 类型 "data type", 审核 "audit", 点击
#: "select"), as Taiwan's apps say them here. Checked by a reader of Traditional Chinese, not
#: by OpenCC's authors: extend it when a page reads wrong.
TAIWAN_TERMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), taiwan)
    for pattern, taiwan in (
        ("賬號", "帳號"),
        ("郵箱", "電子郵件"),
        ("二維碼", "QR Code"),
        ("髮布", "發布"),  # 被发布 split as 被发|布
        ("髮放", "發放"),  # 被发放 (rewards paid out), the same split
        ("物件", "對象"),  # a flag's subject
        ("型別", "類型"),  # a flag's kind
        ("稽核", "審核"),  # the review queue; the audit log is 審計
        # A click (the noun) is 點擊; 點選 stays where it is the verb of a guide: tap the corner,
        # the screen, the button.
        ("點選(?!右上角|左上角|螢幕|按鈕)", "點擊"),
        ("轉化", "轉換"),  # conversions
        ("欺詐", "詐欺"),
        ("營銷", "行銷"),
        ("響應", "回應"),
        ("當前", "目前"),
        ("後臺", "後台"),
        ("平臺", "平台"),
        ("指令碼", "腳本"),
        ("反饋", "回饋"),
        ("另一塊螢幕", "另一個螢幕"),
        ("掃碼工具", "QR Code 掃描工具"),
        ("位址列", "網址列"),  # a browser's address bar
        # Visiting a page or a site (the busy page's 造訪人數, continue to a site); 訪問 that
        # means access (無權訪問, 被腳本訪問, 從公網訪問) is left as it is.
        ("訪問(?=人數)|(?<=繼續)訪問", "造訪"),
        # "By way of" is 透過 in Taiwan (through this link, through a known VPN); 通過 that means
        # passing (a check) is left as it is.
        ("通過(?=此連結|已知)", "透過"),
    )
)
LATIN_BESIDE_HAN = re.compile(r"(?<=[\u4e00-\u9fff])(?=QR Code)|(?<=QR Code)(?=[\u4e00-\u9fff])")


def traditional(simplified: Catalog) -> Catalog:
    """``simplified`` with every translation converted; ids, flags and comments as they are."""
    converter = opencc.OpenCC(CONVERSION)

    def convert(text: str) -> str:
        converted = str(converter.convert(text)).translate(QUOTES)
        for mainland, taiwan in TAIWAN_TERMS:
            converted = mainland.sub(taiwan, converted)
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
