"""Interim platform detection (WeChat, browsers, desktop, bots); the full table replaces it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from detectors.crawlers import is_crawler, is_link_preview


class Strategy(StrEnum):
    REDIRECT = "redirect"
    GUIDE = "guide"
    QR_FIRST = "qr_first"


@dataclass(frozen=True, slots=True)
class Platform:
    key: str
    name: str
    in_app: bool
    strategy: Strategy
    guide: str


@dataclass(frozen=True, slots=True)
class ClientInfo:
    platform: Platform
    os: str
    mobile: bool
    browser_family: str
    bot: str


_T = {
    "wechat": Platform(
        "wechat",
        "WeChat",
        True,
        Strategy.QR_FIRST,
        "Tap ··· in the top right corner, then choose “Open in Browser”.",
    ),
    "browser": Platform("browser", "Browser", False, Strategy.REDIRECT, ""),
    "desktop": Platform("desktop", "Desktop browser", False, Strategy.REDIRECT, ""),
    "bot": Platform("bot", "Bot", False, Strategy.REDIRECT, ""),
    "unknown": Platform("unknown", "Unknown", False, Strategy.REDIRECT, ""),
    "douyin": Platform("douyin", "Douyin", True, Strategy.QR_FIRST, ""),
}
PLATFORM_KEYS = (
    "wechat",
    "wecom",
    "qq",
    "weibo",
    "douyin",
    "tiktok",
    "kuaishou",
    "xiaohongshu",
    "alipay",
    "dingtalk",
    "lark",
    "facebook",
    "instagram",
    "line",
    "x",
    "snapchat",
    "whatsapp",
    "kakaotalk",
    "browser",
    "desktop",
    "bot",
    "unknown",
)


def platform(key: str) -> Platform:
    if key not in PLATFORM_KEYS:
        raise KeyError(key)
    return _T.get(key) or Platform(key, key, True, Strategy.GUIDE, "")


@lru_cache(maxsize=4096)
def detect(ua: str) -> ClientInfo:
    if is_crawler(ua):
        return ClientInfo(
            _T["bot"], "other", False, "bot", "link_preview" if is_link_preview(ua) else "crawler"
        )
    if "MicroMessenger" in ua:
        return ClientInfo(_T["wechat"], "ios", True, "WeChat", "")
    if "Mobile" in ua:
        return ClientInfo(_T["browser"], "ios", True, "Mobile Safari", "")
    return ClientInfo(_T["desktop"], "other", False, "Other", "")
