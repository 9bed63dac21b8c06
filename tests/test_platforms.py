"""In-app browser and platform detection (gateway/platforms.py) against the public corpora and
fixtures of real in-app UA formats."""

from __future__ import annotations

import ast
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from detectors.crawlers import is_crawler, is_link_preview
from gateway import platforms
from gateway.platforms import (
    PLATFORM_KEYS,
    SIGNATURES,
    ClientInfo,
    Strategy,
    detect,
    detect_cached,
    platform,
)
from tests.conftest import corpus

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        lines = (line for line in handle if not line.startswith("#"))
        return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


# -- the uap-core in-app / webview subset -------------------------------------------------------

INAPP_ROWS = read_tsv(corpus("uap-core-ua-tests", "inapp_webview_subset.tsv"))

#: Corpus labels that name an app with a key of its own.
LABEL_KEYS = {
    "wechat": "wechat",
    "wecom": "wecom",
    "qq": "qq",
    "weibo": "weibo",
    # The corpus's three rows are TikTok builds (musical_ly, trill); Douyin (aweme) has none
    # there and is covered by tests/fixtures/inapp_user_agents.tsv.
    "tiktok-douyin": "tiktok",
    "facebook": "facebook",
    "instagram": "instagram",
    "line": "line",
    "twitter": "x",
    "snapchat": "snapchat",
}
#: Labels that name no app with a key. Every label of the corpus is one or the other.
OTHER_LABELS = {"android-webview", "qq-browser", "pinterest"}


def expected_key(labels: str, ua: str) -> str:
    names = set(labels.split(","))
    unknown = names - set(LABEL_KEYS) - OTHER_LABELS
    assert not unknown, f"unmapped corpus label {unknown}: decide what it means"
    if names == {"wechat", "wecom"}:
        # WeCom's UA carries WeChat's token as well: the corpus labels both, the app is WeCom.
        return "wecom"
    apps = names & set(LABEL_KEYS)
    if apps:
        assert len(apps) == 1, labels
        # "facebook,android-webview" and the like: the app's webview is that app.
        return LABEL_KEYS[apps.pop()]
    if names == {"pinterest"}:
        # Pinterest has no key (its in-app browser handles links): a browser on a phone.
        return "browser"
    if names == {"qq-browser"}:
        # "MQQBrowser/" is the QQ Browser app on phones, a normal browser; "QQBrowser/" without
        # the M on Windows is its desktop edition. Neither is QQ's in-app browser.
        return "desktop" if "Windows NT" in ua else "browser"
    # "android-webview" alone: the WebView of an app without a key (Zalo, Baidu, Google app,
    # Flipboard, TopBuzz...). None is known to block links: a browser on a phone.
    assert names == {"android-webview"}, labels
    return "browser"


def test_the_whole_inapp_corpus_is_read() -> None:
    assert len(INAPP_ROWS) == 346
    assert Counter(expected_key(r["labels"], r["user_agent"]) for r in INAPP_ROWS) == {
        "browser": 232,
        "desktop": 2,
        "facebook": 47,
        "instagram": 38,
        "x": 7,
        "wechat": 7,
        "weibo": 3,
        "tiktok": 3,
        "line": 2,
        "wecom": 2,
        "snapchat": 2,
        "qq": 1,
    }


@pytest.mark.parametrize("row", INAPP_ROWS, ids=lambda r: r["labels"])
def test_inapp_corpus_rows_are_classified_as_labelled(row: dict[str, str]) -> None:
    ua = row["user_agent"]
    info = detect(ua)
    assert info.platform.key == expected_key(row["labels"], ua), ua
    assert info.bot == "", ua
    if info.platform.in_app and info.os not in ("windows", "macos"):
        assert info.mobile, ua


# -- fixtures of apps the corpus lacks -------------------------------------------------------

FIXTURE_ROWS = read_tsv(FIXTURES / "inapp_user_agents.tsv")
CHINESE_APPS = (
    "wechat",
    "wecom",
    "qq",
    "weibo",
    "douyin",
    "kuaishou",
    "xiaohongshu",
    "alipay",
    "dingtalk",
    "lark",
    "tiktok",
)


def test_fixtures_cover_each_chinese_app_on_ios_and_android() -> None:
    by_key: dict[str, set[str]] = {}
    counts = Counter(row["platform"] for row in FIXTURE_ROWS)
    for row in FIXTURE_ROWS:
        assert row["platform"] in PLATFORM_KEYS, row
        assert row["source"].strip(), row
        by_key.setdefault(row["platform"], set()).add(row["os"])
    for key in CHINESE_APPS:
        assert counts[key] >= 3, key
        assert {"ios", "android"} <= by_key[key], key
    assert {"harmonyos", "windows", "macos"} <= by_key["wechat"]
    others = {"facebook", "instagram", "line", "x", "snapchat", "whatsapp", "kakaotalk"}
    assert others <= set(by_key)


@pytest.mark.parametrize("row", FIXTURE_ROWS, ids=lambda r: f"{r['platform']}-{r['os']}")
def test_fixture_user_agents(row: dict[str, str]) -> None:
    info = detect(row["user_agent"])
    assert (info.platform.key, info.os, info.bot) == (row["platform"], row["os"], "")
    assert info.mobile is (row["os"] not in ("windows", "macos"))


# -- crawlers --------------------------------------------------------------------------------

CRAWLERS: list[dict[str, Any]] = json.loads(
    corpus("crawler-user-agents", "crawler-user-agents.json").read_text(encoding="utf-8")
)
#: Instances of the crawler list that are people's in-app browsers, not crawlers.
PEOPLE_ON_THE_CRAWLER_LIST = {
    # "MetaIAB Facebook" is Facebook's in-app browser (uap-core issue 665, inapp-spy issue 57);
    # the list files it as a link-preview fetcher.
    "Mobile Safari/537.36 MetaIAB Facebook": "facebook",
    # The pattern "AP3A\.240617\.008" is an Android 15 build id; its instance is an Instagram
    # in-app browser on an OPPO CPH2557.
    "Instagram 406.0.0.58.159 Android": "instagram",
}


def test_every_crawler_instance_is_a_bot() -> None:
    people: dict[str, str] = {}
    instances = [ua for entry in CRAWLERS for ua in entry.get("instances", [])]
    assert len(instances) > 2000
    for ua in instances:
        info = detect(ua)
        person = [key for marker, key in PEOPLE_ON_THE_CRAWLER_LIST.items() if marker in ua]
        if person:
            assert info.platform.key == person[0] and info.bot == "", ua
            people[ua] = info.platform.key
        else:
            assert info.platform.key == "bot", ua
            assert info.bot == ("link_preview" if is_link_preview(ua) else "crawler"), ua
    # The exceptions above still exist in the list (and each only once).
    assert sorted(people.values()) == sorted(PEOPLE_ON_THE_CRAWLER_LIST.values())


@pytest.mark.parametrize(
    ("ua", "bot"),
    [
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "link_preview",
        ),
        ("WhatsApp/2.23.20.0 A", "link_preview"),
        ("TelegramBot (like TwitterBot)", "link_preview"),
        (
            "facebookexternalhit/1.1; kakaotalk-scrap/1.0; +https://devtalk.kakao.com/t/scrap/33984",
            "link_preview",
        ),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler"),
        (
            "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
            "crawler",
        ),
        ("curl/8.7.1", "crawler"),
    ],
)
def test_bots_are_told_apart(ua: str, bot: str) -> None:
    info = detect(ua)
    assert (info.platform.key, info.bot) == ("bot", bot)


# -- system browsers -------------------------------------------------------------------------

#: uap-core browser families and where they must land.
SYSTEM_BROWSERS = {
    "Mobile Safari": "browser",
    "Mobile Safari UI/WKWebView": "browser",
    "Chrome Mobile": "browser",
    "Chrome Mobile iOS": "browser",
    "Chrome Mobile WebView": "browser",
    "Firefox Mobile": "browser",
    "Firefox iOS": "browser",
    "Samsung Internet": "browser",
    "Edge Mobile": "browser",
    "Chrome": "desktop",
    "Firefox": "desktop",
    "Edge": "desktop",
    "Safari": "desktop",
}
UA_CASES: list[dict[str, Any]] = yaml.safe_load(
    corpus("uap-core-ua-tests", "test_ua.yaml").read_text(encoding="utf-8")
)["test_cases"]
BROWSER_CASES = [case for case in UA_CASES if case["family"] in SYSTEM_BROWSERS]


def test_system_browser_cases_are_found() -> None:
    assert len(BROWSER_CASES) >= 50
    assert {case["family"] for case in BROWSER_CASES} == set(SYSTEM_BROWSERS)


@pytest.mark.parametrize(
    "case", BROWSER_CASES, ids=lambda c: f"{c['family']}-{c['user_agent_string'][:40]}"
)
def test_system_browsers_land_on_browser_or_desktop(case: dict[str, Any]) -> None:
    ua = case["user_agent_string"]
    info = detect(ua)
    if is_crawler(ua):
        # uap-core names the engine of some crawlers ("... Google Web Preview) Chrome/27.0"):
        # the crawler list knows them.
        assert info.platform.key == "bot", ua
    else:
        assert info.platform.key == SYSTEM_BROWSERS[case["family"]], ua
        assert info.mobile is (info.platform.key == "browser"), ua
    assert not info.platform.in_app


@pytest.mark.parametrize(
    ("ua", "key", "os", "mobile"),
    [
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "browser",
            "ios",
            True,
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Mobile Safari/537.36",
            "browser",
            "android",
            True,
        ),
        (
            # HarmonyOS NEXT's own browser (Huawei's documented default UA + HuaweiBrowser).
            "Mozilla/5.0 (Phone; OpenHarmony 5.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/114.0.0.0 Safari/537.36 ArkWeb/4.1.6.1 Mobile HuaweiBrowser/5.0.4.300",
            "browser",
            "harmonyos",
            True,
        ),
        (
            "Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00; HMSCore 6.13.0.302) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.5.302 "
            "Mobile Safari/537.36",
            "browser",
            "harmonyos",
            True,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
            "desktop",
            "windows",
            False,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.4 Safari/605.1.15",
            "desktop",
            "macos",
            False,
        ),
        (
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            "desktop",
            "linux",
            False,
        ),
    ],
)
def test_browsers(ua: str, key: str, os: str, mobile: bool) -> None:
    info = detect(ua)
    assert (info.platform.key, info.os, info.mobile, info.bot) == (key, os, mobile, "")


# -- order traps -----------------------------------------------------------------------------

IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148"
)
WEBVIEW = (
    "Mozilla/5.0 (Linux; Android 13; 22081212C Build/TKQ1.220829.002; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("ua", "key"),
    [
        # WeCom carries MicroMessenger too.
        (f"{IOS} wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh ColorScheme/Light", "wecom"),
        (f"{IOS} MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN", "wechat"),
        # Douyin carries BytedanceWebview too; BytedanceWebview alone is TikTok.
        (f"{WEBVIEW} aweme_250900 JsSdk/1.0 AppName/aweme BytedanceWebview/d8a21c6", "douyin"),
        (f"{IOS} BytedanceWebview/d8a21c6 JsSdk/2.0 NetType/4G Region/MY", "tiktok"),
        # Feishu is a ByteDance app too (constructed: a ByteDance webview token in Feishu's UA).
        (
            f"{WEBVIEW} Lark/7.14.8 LarkLocale/zh_CN ChannelName/Feishu BytedanceWebview/d8a21c6",
            "lark",
        ),
        # Old WeChat on Tencent's X5 core carries MQQBrowser.
        (
            "Mozilla/5.0 (Linux; Android 7.1.1; OPPO R11 Build/NMF26X; wv) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Version/4.0 Chrome/53.0.2785.49 Mobile MQQBrowser/6.2 TBS/043632 "
            "Safari/537.36 MicroMessenger/6.6.1.1220(0x26060135) NetType/WIFI Language/zh_CN",
            "wechat",
        ),
        # The QQ Browser app is a browser; QQ's in-app browser has QQ/ and the V1_..._SQ_ mark.
        (
            "Mozilla/5.0 (Linux; U; Android 13; zh-cn; 22081212C Build/TKQ1.220829.002) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/109.0.5414.86 "
            "MQQBrowser/14.6 Mobile Safari/537.36 COVC/046915",
            "browser",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
            "like Gecko) Version/16.6 MQQBrowser/14.2.0 Mobile/15E148 Safari/604.1 QBWebViewUA/2 "
            "QBWebViewType/1 WKType/1",
            "browser",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/94.0.4606.71 Safari/537.36 Core/1.94.236.400 QQBrowser/12.4.5626.400",
            "desktop",
        ),
        (f"{WEBVIEW} V1_AND_SQ_9.0.20_6048_YYB_D QQ/9.0.20.16240 NetType/WIFI", "qq"),
        (f"{IOS} QQ/9.0.8.614 V1_IPH_SQ_9.0.8_1_APP_A Pixel/1179 Core/WKWebView", "qq"),
        # DingTalk is an Alibaba "AliApp(" container like Alipay.
        (f"{IOS} AliApp(DingTalk/7.5.20) com.laiwang.DingTalk/35581627 Channel/201200", "dingtalk"),
        (
            f"{IOS} AliApp(AP/10.6.10.6000) Nebula WK AlipayClient/10.6.10.6000 Language/zh-Hans",
            "alipay",
        ),
        # Constructed: DingTalk's token before an Alipay-style one; DingTalk is decided first.
        (
            f"{IOS} AliApp(DingTalk/7.5.20) Nebula AlipayDefined(nt:WIFI) AlipayClient/10.6.10",
            "dingtalk",
        ),
        # Instagram may carry Facebook-style parts (constructed: the warning).
        (
            f"{WEBVIEW} Instagram 330.0.0.40.92 Android (34/14; 420dpi) [FBAN/FB4A;FBAV/463.0]",
            "instagram",
        ),
        (
            f"{IOS} Instagram 334.0.4.32.98 (iPhone15,3; iOS 17_5; en_US; IABMV/1) MetaIAB",
            "instagram",
        ),
        (f"{WEBVIEW} [FB_IAB/FB4A;FBAV/463.0.0.44.109;]", "facebook"),
        (f"{IOS} [FBAN/MessengerForiOS;FBAV/458.0.0.41.108;FBDV/iPhone14,5]", "facebook"),
        # WhatsApp's in-app browser is a person, its preview fetcher a bot.
        (f"{WEBVIEW} WhatsApp/2.24.10.85 A", "whatsapp"),
        ("WhatsApp/2.23.20.0 A", "bot"),
        ("WhatsApp/2.2336.7 i", "bot"),
        # The link-preview marker "snapchat" is in every Snapchat UA: only crawlers get it.
        (f"{IOS} Snapchat/13.1.0.38 (like Safari/8617.2.4.10.8, panda)", "snapchat"),
        ("Snap URL Preview Service; bot; snapchat; https://developers.snap.com/robots", "bot"),
        # KakaoTalk's preview fetcher is "kakaotalk-scrap", lower case.
        (f"{IOS} KAKAOTALK 10.6.5", "kakaotalk"),
        # DingTalk's link-preview fetcher.
        (
            "DingTalkBot-LinkService/1.0 (+https://open-doc.dingtalk.com/microapp/faquestions/ftpfeu)",
            "bot",
        ),
        # A listed crawler dressed as X's webview names its home page: the crawler list wins.
        (
            f"{IOS} Twitter for iPhone BrandVerity/1.0 "
            "(http://www.brandverity.com/why-is-brandverity-visiting-me)",
            "bot",
        ),
    ],
)
def test_order_traps(ua: str, key: str) -> None:
    info = detect(ua)
    assert info.platform.key == key, ua
    assert (info.bot != "") is (key == "bot"), ua


# -- nothing to go on --------------------------------------------------------------------------


@pytest.mark.parametrize("ua", ["", "   ", "-", "abc", "Mozilla/5.0"])
def test_unknown(ua: str) -> None:
    assert detect(ua) == ClientInfo(platform("unknown"), "other", False, "Other", "")


# -- the table and the platforms -------------------------------------------------------------


def test_platform_keys_and_strategies() -> None:
    assert PLATFORM_KEYS == (
        "wechat", "wecom", "qq", "weibo", "douyin", "tiktok", "kuaishou", "xiaohongshu",
        "alipay", "dingtalk", "lark", "facebook", "instagram", "line", "x", "snapchat",
        "whatsapp", "kakaotalk", "browser", "desktop", "bot", "unknown",
    )  # fmt: skip
    strategies = {key: platform(key).strategy for key in PLATFORM_KEYS}
    assert {k for k, s in strategies.items() if s is Strategy.QR_FIRST} == {
        "wechat", "douyin", "xiaohongshu", "kuaishou",
    }  # fmt: skip
    assert {k for k, s in strategies.items() if s is Strategy.GUIDE} == {
        "wecom", "qq", "weibo", "alipay", "dingtalk", "lark", "tiktok",
    }  # fmt: skip
    for key in PLATFORM_KEYS:
        found = platform(key)
        assert found.key == key and found.name
        assert found.in_app is (key not in ("browser", "desktop", "bot", "unknown"))
        # Every in-app platform says where "open in browser" is; the others say nothing.
        assert bool(found.guide) is found.in_app
    with pytest.raises(KeyError):
        platform("telegram")


def test_every_in_app_platform_has_one_signature() -> None:
    keys = [key for key, _ in SIGNATURES]
    assert len(keys) == len(set(keys))
    assert set(keys) == {key for key in PLATFORM_KEYS if platform(key).in_app}
    # The order the issue asks for.
    for first, then in [
        ("wecom", "wechat"),
        ("wechat", "qq"),
        ("dingtalk", "alipay"),
        ("douyin", "tiktok"),
        ("lark", "tiktok"),
        ("instagram", "facebook"),
    ]:
        assert keys.index(first) < keys.index(then)


def test_guides_and_names_are_marked_for_extraction() -> None:
    """Every guide, display name and scanning hint is the literal argument of an N_() call, as
    `pybabel extract -k N_` needs."""
    tree = ast.parse(Path(platforms.__file__).read_text(encoding="utf-8"))
    marked = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "N_"
        and isinstance(node.args[0], ast.Constant)
    }
    guides = {platform(key).guide for key in PLATFORM_KEYS} - {""}
    names = {platform(key).name for key in PLATFORM_KEYS}
    scans = {platform(key).scan for key in PLATFORM_KEYS}
    assert scans == {platforms.SCAN_IN_APP, platforms.SCAN_ELSEWHERE}
    # The desktop clients' scanning hint is the page's, not a platform's.
    assert guides | names | scans | {platforms.SCAN_ON_DESKTOP} == marked
    assert platforms.N_("x") == "x"


def test_results_are_cached_by_user_agent() -> None:
    ua = f"{IOS} MicroMessenger/8.0.49(0x18003137) NetType/4G Language/zh_CN cache-test"
    detect_cached.cache_clear()
    first = detect(ua)
    assert detect(ua) is first
    assert detect_cached.cache_info().hits == 1


def test_agents_longer_than_any_real_one_are_classified_but_not_kept() -> None:
    """Anyone can send an 8 KB User-Agent (gunicorn's header limit): kept in the classifiers'
    caches, 16,384 distinct ones held 130 MB in each worker. Past CACHED_UA_LENGTH they are
    classified the same way, afresh each time."""
    from detectors import crawlers

    padding = "x" * 8000
    wechat = f"{IOS} MicroMessenger/8.0.49(0x18003137) NetType/4G Language/zh_CN {padding}"
    bot = f"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) {padding}"
    detect_cached.cache_clear()
    crawlers._is_crawler_cached.cache_clear()
    crawlers._is_link_preview_cached.cache_clear()
    assert detect(wechat).platform.key == "wechat" and not detect(wechat).bot
    assert detect(bot).bot == "crawler"
    assert crawlers.is_crawler(bot) and not crawlers.is_link_preview(bot)
    assert detect_cached.cache_info().currsize == 0
    assert crawlers._is_crawler_cached.cache_info().currsize == 0
    assert crawlers._is_link_preview_cached.cache_info().currsize == 0
    # A real agent's length is kept as before.
    detect(wechat[: -len(padding) - 1])
    assert detect_cached.cache_info().currsize == 1
