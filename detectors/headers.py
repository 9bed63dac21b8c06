"""Header consistency: what real browsers send, and client hints that contradict the user agent.

Real browsers send Accept-Language; many scripts do not, or send a placeholder. Chromium-based
browsers send client hints (Sec-CH-UA-*) that must agree with the User-Agent string; Safari and
Firefox send none. Android WebViews name their app in X-Requested-With. A contradiction means
the User-Agent was written by someone other than the browser.
"""

from __future__ import annotations

import re
from functools import lru_cache

from detectors.base import NOTHING, ClickInput, History, Signal

_LANGUAGE_TAG = re.compile(r"^\s*([a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*|\*)\s*(;\s*q=[0-9.]+)?\s*$")
#: X-Requested-With package names of apps the user agent should then name.
_APP_PACKAGES = {
    "com.tencent.mm": "MicroMessenger",
    "com.tencent.mobileqq": "QQ/",
    "com.sina.weibo": "weibo",
    "com.ss.android.ugc.aweme": "aweme",
    "com.smile.gifmaker": "Kwai",
    "com.xingin.xhs": "xhsdiscover",
    "com.eg.android.AlipayGphone": "Alipay",
}


@lru_cache(maxsize=4096)
def accept_language_problem(value: str) -> str:
    """'' when the header looks like a browser's; otherwise what is wrong with it."""
    if not value.strip():
        return "no Accept-Language header"
    parts = value.split(",")
    if len(parts) > 20 or not all(_LANGUAGE_TAG.match(part) for part in parts):
        return "malformed Accept-Language header"
    if value.strip() == "*":
        return "Accept-Language is a bare '*'"
    return ""


def hints_problem(click: ClickInput) -> str:
    """'' when the client hints (if any) agree with the user agent."""
    headers = click.headers
    ua = click.ua
    brands = headers.get("sec-ch-ua", "")
    platform = headers.get("sec-ch-ua-platform", "").strip('"').lower()
    mobile = headers.get("sec-ch-ua-mobile", "")
    if brands and (
        "Firefox/" in ua or ("Safari/" in ua and "Chrome/" not in ua and "CriOS" not in ua)
    ):
        return "client hints sent by a browser that does not send them"
    if platform:
        claims = {
            "android": "Android" in ua,
            "ios": "iPhone" in ua or "iPad" in ua,
            "windows": "Windows" in ua,
            "macos": "Macintosh" in ua,
            "linux": "Linux" in ua and "Android" not in ua,
            "chrome os": "CrOS" in ua,
        }
        if platform in claims and not claims[platform]:
            return f"client hints say {platform}, the user agent does not"
    if mobile in ("?0", "?1"):
        says_mobile = "Mobile" in ua or "Android" in ua or "iPhone" in ua
        if (mobile == "?1") != says_mobile and "iPad" not in ua:
            return "client hints disagree with the user agent about being mobile"
    package = headers.get("x-requested-with", "")
    marker = _APP_PACKAGES.get(package)
    if marker and marker.lower() not in ua.lower():
        return f"X-Requested-With names {package}, the user agent does not"
    return ""


class HeaderConsistencyDetector:
    name = "headers"
    cost = 2
    reads = frozenset({"headers", "ua"})

    def score(self, click: ClickInput, history: History) -> Signal:
        hints = hints_problem(click)
        if hints:
            return Signal(0.6, hints, "spoofing")
        language = accept_language_problem(click.accept_language)
        if language:
            # Some in-app webviews omit the header too: suspicious, not conclusive.
            return Signal(0.35 if language.startswith("no ") else 0.3, language)
        return NOTHING
