"""Which app's in-app browser a click comes from, and how to get the person to the destination.

Chat and social apps open shared links in their own browsers, and several of them block or cripple
links to outside sites. :func:`detect` names the platform from the User-Agent with ONE ordered
table of signatures (:data:`SIGNATURES`, first match wins), then the crawler list
(:mod:`detectors.crawlers`), then ua-parser's view of the operating system and browser. Each
platform carries the default strategy of the click's fallback ladder and, for in-app browsers, an
English msgid telling people where that app's menu puts "open in browser".

Order of the checks, and why:

1. No user agent at all: ``unknown``.
2. The in-app signatures, before the crawler list, because the crawler list matches people's
   in-app browsers: its ``WhatsApp`` pattern matches any UA containing "WhatsApp" (WhatsApp's
   in-app browser too, not only its link-preview fetcher); its ``MetaIAB Facebook`` entry is
   Facebook's own in-app browser (uap-core issue 665 and inapp-spy issue 57 show it on people's
   phones); its pattern for AP3A.240617.008 matches an Android build id, and its one instance
   is an Instagram in-app browser on an OPPO phone. People must not get a preview instead of
   their link, so a signature wins over the list, except when the UA also holds a URL: app UAs
   never do, and self-declared crawlers dressed as an app's webview do (BrandVerity's "Twitter
   for iPhone" instance). tests/test_platforms.py checks every instance of the list.
3. The crawler list: ``bot``, with ``link_preview`` for chat and social unfurlers. The
   link-preview markers are consulted only for UAs the crawler list matched: on their own they
   also match people (the marker "snapchat" is in every Snapchat in-app UA).
4. ua-parser (uap-core's regexes): a phone or tablet is a ``browser``, anything else with a known
   browser or operating system a ``desktop``, the rest ``unknown``. A generic Android WebView of
   an app without a signature here (``; wv)``: Zalo, Baidu, Google app, Flipboard...) is a
   ``browser``: none of those apps is known to block links.

Results are cached by user agent (LRU). A cold classification costs about 17 microseconds
(median; most of it ua-parser on its RE2 backend, whose pure-Python resolver would cost 150), a
cached one under a tenth of a microsecond; ``bench/platforms.py`` measures both. Importing this
module loads uap-core's regexes and compiles the RE2 automata (about 0.1 s, once per worker).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import re2
from ua_parser import Domain, load_builtins
from ua_parser.re2 import Resolver

from detectors.crawlers import CACHED_UA_LENGTH, is_crawler, is_link_preview
from gateway.i18n import N_


class Strategy(StrEnum):
    #: System browsers, and in-app browsers that handle redirects well.
    REDIRECT = "redirect"
    #: In-app browsers that cripple links: show the "open in browser" guide first.
    GUIDE = "guide"
    #: In-app browsers known to block external links: lead with the QR code.
    QR_FIRST = "qr_first"


#: How to scan the fallback page's QR code: in the apps whose long-press menu on an image offers
#: to scan the code in it (WeChat's 识别图中二维码 and its siblings), and in every other one,
#: where that menu item does not exist.
SCAN_IN_APP = N_(
    "Long-press the code and choose “Scan QR Code”, or scan it with your phone's camera from "
    "another screen."
)
SCAN_ELSEWHERE = N_(
    "Open this page on another screen (a computer or a second phone) and scan the code with your "
    "phone's camera, or take a screenshot and open it in a QR code scanner."
)
#: On a computer (an app's desktop client), the phone scans the screen.
SCAN_ON_DESKTOP = N_("Scan the code with your phone's camera.")


@dataclass(frozen=True, slots=True)
class Platform:
    #: Stable id, one of PLATFORM_KEYS.
    key: str
    #: Display name: an English msgid, shown translated (the fallback page, the console).
    name: str
    in_app: bool
    #: The default strategy for this platform.
    strategy: Strategy
    #: English msgid: where this app's menu puts "open in browser" (empty for non-in-app).
    guide: str
    #: English msgid: how to scan the fallback page's QR code in this app.
    scan: str = SCAN_ELSEWHERE


@dataclass(frozen=True, slots=True)
class ClientInfo:
    platform: Platform
    #: "ios" | "android" | "harmonyos" | "windows" | "macos" | "linux" | "other"
    os: str
    #: A phone or tablet.
    mobile: bool
    #: ua-parser's browser family, e.g. "Mobile Safari", "Chrome Mobile WebView", "WeChat Browser".
    browser_family: str
    #: "" for people, "link_preview" for chat/social unfurlers, "crawler" for other crawler-list
    #: matches.
    bot: str


# Where each app's menu puts "open in the system browser". Apps that block external links may have
# no such item for some links; their guide also offers copying the link.
_MENU = N_("Tap ··· in the top right corner, then choose “Open in Browser”.")
_MENU_OR_COPY = N_(
    "Tap ··· in the top right corner and choose “Open in Browser”. If it isn’t there, choose "
    "“Copy Link” and paste the link into your browser."
)
_META = N_("Tap ··· (or ⋮) in the top right corner, then choose “Open in external browser”.")
_LINE = N_("Tap ··· (or ⋮) in the top right corner, then choose “Open in default browser”.")
_GENERIC = N_("Tap ··· (or ⋮) in the top right corner, then choose “Open in browser”.")
_KAKAO = N_("Tap ··· or ⋮ in a corner of the screen, then choose “Open in another browser”.")

_PLATFORMS = (
    Platform("wechat", N_("WeChat"), True, Strategy.QR_FIRST, _MENU, SCAN_IN_APP),
    Platform("wecom", N_("WeCom"), True, Strategy.GUIDE, _MENU, SCAN_IN_APP),
    Platform("qq", N_("QQ"), True, Strategy.GUIDE, _MENU, SCAN_IN_APP),
    Platform("weibo", N_("Weibo"), True, Strategy.GUIDE, _MENU),
    Platform("douyin", N_("Douyin"), True, Strategy.QR_FIRST, _MENU_OR_COPY),
    Platform("tiktok", N_("TikTok"), True, Strategy.GUIDE, _MENU),
    Platform("kuaishou", N_("Kuaishou"), True, Strategy.QR_FIRST, _MENU_OR_COPY),
    Platform("xiaohongshu", N_("Xiaohongshu"), True, Strategy.QR_FIRST, _MENU_OR_COPY),
    Platform("alipay", N_("Alipay"), True, Strategy.GUIDE, _MENU_OR_COPY),
    Platform("dingtalk", N_("DingTalk"), True, Strategy.GUIDE, _MENU, SCAN_IN_APP),
    Platform("lark", N_("Feishu/Lark"), True, Strategy.GUIDE, _MENU),
    Platform("facebook", N_("Facebook"), True, Strategy.REDIRECT, _META),
    Platform("instagram", N_("Instagram"), True, Strategy.REDIRECT, _META),
    Platform("line", N_("LINE"), True, Strategy.REDIRECT, _LINE),
    Platform("x", N_("X"), True, Strategy.REDIRECT, _GENERIC),
    Platform("snapchat", N_("Snapchat"), True, Strategy.REDIRECT, _GENERIC),
    Platform("whatsapp", N_("WhatsApp"), True, Strategy.REDIRECT, _GENERIC),
    Platform("kakaotalk", N_("KakaoTalk"), True, Strategy.REDIRECT, _KAKAO),
    Platform("browser", N_("Mobile browser"), False, Strategy.REDIRECT, ""),
    Platform("desktop", N_("Desktop browser"), False, Strategy.REDIRECT, ""),
    Platform("bot", N_("Bot"), False, Strategy.REDIRECT, ""),
    Platform("unknown", N_("Unknown"), False, Strategy.REDIRECT, ""),
)
_BY_KEY = {p.key: p for p in _PLATFORMS}
PLATFORM_KEYS: tuple[str, ...] = tuple(p.key for p in _PLATFORMS)


def platform(key: str) -> Platform:
    """The platform with this key; KeyError for unknown keys."""
    return _BY_KEY[key]


#: The in-app browser signatures (RE2 syntax), in order: the first that matches names the
#: platform. Tokens are matched case-sensitively as the apps write them (the lower-case forms are
#: other things, e.g. "kakaotalk-scrap" is KakaoTalk's preview fetcher). Where the order of two
#: rows matters, the comment on the earlier one says why.
SIGNATURES: tuple[tuple[str, str], ...] = (
    # WeCom's webview is WeChat's: its UAs carry "MicroMessenger/" too, so it must come first.
    ("wecom", r"wxwork"),
    # WeChat on every system: "MicroMessenger/8.0.x", with MMWEBSDK/MMWEBID on Android's XWEB
    # and HarmonyOS; desktop WeChat adds WindowsWechat/MacWechat. Old Android WeChat ran on
    # Tencent's X5 core and also carries "MQQBrowser/": WeChat is decided before anything QQ.
    ("wechat", r"MicroMessenger|MMWEBSDK/|WindowsWechat|MacWechat"),
    # QQ's in-app browser: "QQ/8.9.x" with its QUA mark "V1_AND_SQ_..." / "V1_IPH_SQ_...". Never
    # a bare "QQ": "MQQBrowser/" alone is the QQ Browser app, a normal browser, and "QQBrowser/"
    # its desktop edition.
    ("qq", r"\bQQ/\d|\bV1_[A-Z0-9]+_SQ_"),
    # Weibo: "Weibo (iPhone14,2__weibo__13.10.1__iphone__os17.0)".
    ("weibo", r"__weibo__|\bWeibo \("),
    # DingTalk is an Alibaba container ("AliApp(DingTalk/7.0.0)"): before Alipay's AliApp rule.
    # Desktop DingTalk writes "DingTalk(7.0.10-Release...)". "DingTalkBot-LinkService" (its
    # link-preview fetcher) matches neither.
    ("dingtalk", r"AliApp\(DingTalk|\bDingTalk[/(]"),
    # Alipay: "AliApp(AP/10.5.26.6000) ... AlipayClient/10.5.26.6000" (AlipayClientHK too).
    # Other Alibaba apps (Taobao "AliApp(TB/", Tmall "AliApp(TM/") have no key: not matched.
    ("alipay", r"AlipayClient|AliApp\(AP/"),
    # Douyin: "aweme_26.2.0" (iOS), "aweme_260100 ... AppName/aweme" (Android), "aweme_lite".
    # Its UAs carry "BytedanceWebview/" too, which alone means TikTok below: Douyin first.
    ("douyin", r"aweme"),
    # Feishu/Lark is a ByteDance app as well ("Lark/7.12.7 LarkLocale/zh_CN ChannelName/Feishu
    # TTWebView/..."): before TikTok's generic ByteDance webview rule.
    ("lark", r"\bLark/|\bFeishu/|LarkLocale"),
    # TikTok: "musical_ly_34.3.1" / "AppName/musical_ly" (global), "trill_34.9.0" (Asia),
    # "musically_go" (Lite), and ByteDance's webview token once the ByteDance apps with keys of
    # their own (Douyin, Lark) have been ruled out.
    ("tiktok", r"musical_ly|musically_go|\btrill_|AppName/trill|BytedanceWebview"),
    # Kuaishou: "Kwai/13.3.30" (iOS, and Kwai, its international app), "ksNebula/12.5" (Kuaishou
    # Lite on Android, which has no "Kwai"), "KsWebView/" (its Android webview).
    ("kuaishou", r"(?i:\bkwai)|ksNebula|KsWebView"),
    # Xiaohongshu (RED): "xhsdiscover/8.40" (iOS), "xiaohongshu" / "XiaoHongShu/8.92" (Android).
    ("xiaohongshu", r"xhsdiscover|(?i:xiaohongshu)"),
    # Instagram is a Meta app and its UAs may carry Facebook's FBAN/FBAV-style parts or Meta's
    # "MetaIAB": before Facebook.
    ("instagram", r"\bInstagram\b"),
    # Facebook, Messenger ("FBAN/Messenger", "FB_IAB/MESSENGER", "FBAN/Orca-Android") and Meta's
    # newer in-app browser token ("MetaIAB Facebook", or "MetaIAB" alone).
    ("facebook", r"FBAN/|FBAV/|FB_IAB/|\bMetaIAB\b"),
    # LINE: "Safari Line/7.12.0" (iOS), "Line/6.4.1" (Android). Its crawler is "Linespider".
    ("line", r"\bLine/\d"),
    # X/Twitter's in-app webviews; "Twitterbot" is its link-preview fetcher.
    ("x", r"Twitter for (?:iPhone|iPad|Android)|\bTwitterAndroid"),
    # Snapchat: "Snapchat/10.38.0.25". Its unfurlers are "Snap URL Preview Service ... snapchat"
    # and "SnapchatAds/" / "SnapURLPreview/": none has "Snapchat/" with a version.
    ("snapchat", r"\bSnapchat/\d"),
    # KakaoTalk: "KAKAOTALK 10.3.5" (iOS), ";KAKAOTALK 2410200" (Android).
    ("kakaotalk", r"KAKAOTALK"),
    # WhatsApp's in-app browser appends "WhatsApp/2.x" to a browser UA. Its link-preview fetcher
    # sends "WhatsApp/2.23.20.0 A" with no browser part: not matched, so it is a bot.
    ("whatsapp", r"\AMozilla/.*\bWhatsApp/"),
)

# uap-core's operating system families, mapped to ClientInfo.os.
_OS_KEYS = {
    "iOS": "ios",
    "iPadOS": "ios",
    "Android": "android",
    "HarmonyOS": "harmonyos",
    "Mac OS X": "macos",
    "Mac OS": "macos",
    "Linux": "linux",
    "Ubuntu": "linux",
    "Kubuntu": "linux",
    "Debian": "linux",
    "Fedora": "linux",
    "Red Hat": "linux",
    "CentOS": "linux",
    "SUSE": "linux",
    "openSUSE": "linux",
    "Gentoo": "linux",
    "Mint": "linux",
    "Linux Mint": "linux",
    "Arch Linux": "linux",
    "Slackware": "linux",
    "Mandriva": "linux",
    "Chrome OS": "linux",
}
# Windows for phones and handhelds is not what "windows" means to a person reading a guide.
_HANDHELD_WINDOWS = ("Windows Phone", "Windows Mobile", "Windows CE")
# Families of phone and tablet systems beyond iOS and Android (uap-core's names).
_MOBILE_OS = frozenset(
    {
        *_HANDHELD_WINDOWS,
        "Symbian OS",
        "Symbian^3",
        "Symbian^3 Anna",
        "Symbian^3 Belle",
        "BlackBerry OS",
        "BlackBerry Tablet OS",
        "Firefox OS",
        "KaiOS",
        "Tizen",
        "Sailfish",
        "Bada",
        "MeeGo",
        "Maemo",
        "Nokia Series 40",
        "Nokia Series 30 Plus",
        "BREW",
        "Brew MP",
        "Ubuntu Touch",
    }
)
# HarmonyOS NEXT writes "(Phone; OpenHarmony 5.0)", which uap-core does not know yet; HarmonyOS
# 2-4 write "HarmonyOS" into an Android UA.
_HARMONY = re.compile(r"OpenHarmony|HarmonyOS")
# Signs of a phone or tablet where the operating system alone does not tell.
_MOBILE_HINT = re.compile(
    r"Mobi|iPhone|iPad|iPod|Android|Build/|Phone;|Tablet;|Symbian|MIDP|BlackBerry|Opera Mini"
)

#: In-app platforms that also have desktop clients (their links open in the client's browser).
_DESKTOP_APPS = frozenset({"wechat", "wecom", "qq", "dingtalk", "lark"})


def _signature_set() -> re2.Set:
    # One RE2 pass finds every signature that matches (about 1 us); the lowest index is the first
    # match of the table. Searching the patterns one by one with `re` cost about 20 us per UA.
    signatures = re2.Set.SearchSet(re2.Options())
    for index, (_, pattern) in enumerate(SIGNATURES):
        if signatures.Add(pattern) != index:
            raise ValueError(f"signature {index} does not compile: {pattern}")
    signatures.Compile()
    return signatures


_SIGNATURES = _signature_set()
# Eager: the lazy loader would compile each extraction regex on its first use, on a click.
_PARSER = Resolver(load_builtins())
_DOMAINS = Domain.USER_AGENT | Domain.OS


def detect(ua: str) -> ClientInfo:
    """Classify a User-Agent (cached by the exact string, unless it is longer than any real
    agent: see detectors.crawlers.CACHED_UA_LENGTH)."""
    if len(ua) > CACHED_UA_LENGTH:
        return _classify(ua)
    return detect_cached(ua)


def _classify(ua: str) -> ClientInfo:
    if not ua.strip():
        return ClientInfo(_BY_KEY["unknown"], "other", False, "Other", "")
    parsed = _PARSER(ua, _DOMAINS)
    family = parsed.user_agent.family if parsed.user_agent else "Other"
    os_family = parsed.os.family if parsed.os else "Other"
    os = _os_key(os_family, ua)
    mobile = _is_mobile(os, os_family, family, ua)
    matched = _SIGNATURES.Match(ua)
    # A listed crawler dressed as an app's webview names its home page; app UAs never hold a URL
    # ("... Twitter for iPhone BrandVerity/1.0 (http://www.brandverity.com/...)").
    if matched and not ("://" in ua and is_crawler(ua)):
        key = SIGNATURES[min(matched)][0]
        # Apps without a desktop client run on a phone or tablet even when the UA does not say
        # which system ("[FBAN/FB4A;FBAV/3.9;...]").
        phone_only = key not in _DESKTOP_APPS and os == "other"
        return ClientInfo(_BY_KEY[key], os, mobile or phone_only, family, "")
    if is_crawler(ua):
        bot = "link_preview" if is_link_preview(ua) else "crawler"
        return ClientInfo(_BY_KEY["bot"], os, mobile, family, bot)
    if mobile:
        key = "browser"
    elif os != "other" or family != "Other":
        key = "desktop"
    else:
        key = "unknown"
    return ClientInfo(_BY_KEY[key], os, mobile, family, "")


#: detect's cache (its hits and misses are in cache_info()).
detect_cached = lru_cache(maxsize=16384)(_classify)


def _os_key(os_family: str, ua: str) -> str:
    if _HARMONY.search(ua):
        return "harmonyos"
    if os_family.startswith("Windows") and os_family not in _HANDHELD_WINDOWS:
        return "windows"
    return _OS_KEYS.get(os_family, "other")


def _is_mobile(os: str, os_family: str, family: str, ua: str) -> bool:
    if os in ("ios", "android") or os_family in _MOBILE_OS:
        return True
    if "Mobile" in family or "Mini" in family:
        # "Opera Mobile" on a Windows PocketPC, "Edge Mobile" on an iPad asking for desktop sites.
        return True
    if os in ("windows", "macos"):
        # Desktop WeChat, DingTalk and Lark run here.
        return False
    # HarmonyOS ("Phone;"/"Mobile" on phones, not on PCs), Android phones that uap-core reads as
    # Linux ("... HTC Hero Build/FRF91"), feature phones.
    return _MOBILE_HINT.search(ua) is not None
