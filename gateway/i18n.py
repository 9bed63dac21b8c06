"""Languages: Simplified Chinese (the default: the audience is Chinese), Traditional Chinese
and English, through flask-babel.

Public pages follow the visitor's Accept-Language; staff pages (the console) may override it with
the user's own setting. Catalogues live in gateway/translations (msgids in English);
`./run i18n` refreshes them (see DEVELOPERS.md). The Traditional catalogue is made from the
Simplified one (tools/traditional.py), never edited by hand.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g, request
from flask_babel import Babel, get_locale
from werkzeug.datastructures import LanguageAccept

#: Locales with a catalogue, and the Accept-Language tags that select them. Babel names
#: Simplified Chinese zh_Hans_CN (it adds the script), so the catalogue directory does too.
#: Readers in Taiwan, Hong Kong and Macao (LINE's and Facebook's in-app browsers among them) ask
#: for zh-TW, zh-HK, zh-MO, zh-Hant or Cantonese (yue, zh-yue): Traditional characters. A bare
#: ``zh`` is Simplified.
LOCALES = {
    "zh_Hans_CN": ("zh-CN", "zh-Hans", "zh-SG", "zh"),
    "zh_Hant_TW": ("zh-TW", "zh-Hant", "zh-HK", "zh-MO", "zh-yue", "yue"),
    "en": ("en",),
}
DEFAULT_LOCALE = "zh_Hans_CN"
TRADITIONAL_LOCALE = "zh_Hant_TW"
#: The page's ``lang`` attribute for each locale: the script, not a region, for Traditional (one
#: catalogue serves Taiwan, Hong Kong and Macao; browsers pick fonts by it).
HTML_LANG = {"zh_Hans_CN": "zh-CN", "zh_Hant_TW": "zh-Hant", "en": "en"}
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def N_(message: str) -> str:
    """Mark a string for translation where it is defined; translate it where it is shown."""
    return message


#: Lowercase language tag -> locale.
_BY_TAG = {tag.lower(): locale for locale, tags in LOCALES.items() for tag in tags}


def best_locale(accept: LanguageAccept) -> str:
    """The locale of the reader's most preferred language that has one, each tag tried whole and
    then shortened (zh-Hant-TW, zh-Hant; en-US, en). werkzeug's own ``best_match`` tries every
    exact match before any shortened one, so "en-US, zh-TW;q=0.5" got Chinese."""
    for value, quality in accept:  # werkzeug keeps them by quality, most preferred first
        if quality <= 0:
            continue
        parts = value.lower().replace("_", "-").split("-")
        for end in range(len(parts), 0, -1):
            locale = _BY_TAG.get("-".join(parts[:end]))
            if locale is not None:
                return locale
    return DEFAULT_LOCALE


def select_locale() -> str:
    chosen: str | None = getattr(g, "locale", None)  # a staff user's own setting, when signed in
    if chosen in LOCALES:
        return chosen
    return best_locale(request.accept_languages)


def init_app(app: Flask) -> None:
    Babel(
        app,
        default_locale=DEFAULT_LOCALE,
        default_translation_directories=str(TRANSLATIONS),
        locale_selector=select_locale,
    )
    app.jinja_env.globals["html_lang"] = html_lang


def html_lang() -> str:
    """The page's ``lang`` attribute for the current locale."""
    return HTML_LANG.get(str(get_locale() or DEFAULT_LOCALE), HTML_LANG[DEFAULT_LOCALE])
