"""Languages: zh-CN (the default: the audience is Chinese) and en, through flask-babel.

Public pages follow the visitor's Accept-Language; staff pages (the console) may override it with
the user's own setting. Catalogues live in gateway/translations (msgids in English);
`./run i18n` refreshes them (see DEVELOPERS.md).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g, request
from flask_babel import Babel, get_locale
from werkzeug.datastructures import LanguageAccept

#: Locales with a catalogue, and the Accept-Language tags that select them. Babel names
#: Simplified Chinese zh_Hans_CN (it adds the script), so the catalogue directory does too.
LOCALES = {"zh_Hans_CN": ("zh-CN", "zh-Hans", "zh"), "en": ("en",)}
DEFAULT_LOCALE = "zh_Hans_CN"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def N_(message: str) -> str:
    """Mark a string for translation where it is defined; translate it where it is shown."""
    return message


def best_locale(accept: LanguageAccept) -> str:
    tags = [tag for options in LOCALES.values() for tag in options]
    match = accept.best_match(tags)
    if match is None:
        return DEFAULT_LOCALE
    return next(locale for locale, options in LOCALES.items() if match in options)


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
    return "zh-CN" if str(get_locale() or DEFAULT_LOCALE).startswith("zh") else "en"
