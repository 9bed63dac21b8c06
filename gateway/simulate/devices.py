"""Devices: phones and computers as the Chinese market had them in early 2026, and what they send.

A device knows its platform, model, OS, WebView kernel, system browser and app versions, and
builds the User-Agent and request headers each app context would send: WeChat, QQ, Weibo and
Douyin in-app webviews, the system browser, and desktop WeChat or browsers. The UA strings follow
the real formats of those apps (see tests/corpora/uap-core-ua-tests for published examples);
model codes are Chinese-market model numbers. Client hints follow the engines: Chromium-based
browsers and Android WebViews send ``sec-ch-ua*``, WebKit (every iOS app) sends none, Android
WebViews add ``x-requested-with`` with the app's package name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random

from gateway.simulate.sampling import Weighted, below

#: App contexts a link can be opened in.
WECHAT, QQ, WEIBO, DOUYIN, BROWSER = "wechat", "qq", "weibo", "douyin", "browser"
IN_APP = (WECHAT, QQ, WEIBO, DOUYIN)

_PACKAGES = {
    WECHAT: "com.tencent.mm",
    QQ: "com.tencent.mobileqq",
    WEIBO: "com.sina.weibo",
    DOUYIN: "com.ss.android.ugc.aweme",
}

# -- catalogues -----------------------------------------------------------------------------

#: (identifier, marketing name, weight)
_IPHONES = (
    ("iPhone12,1", "iPhone 11", 6), ("iPhone13,2", "iPhone 12", 7), ("iPhone14,5", "iPhone 13", 11),
    ("iPhone14,2", "iPhone 13 Pro", 5), ("iPhone14,7", "iPhone 14", 7),
    ("iPhone15,2", "iPhone 14 Pro", 6), ("iPhone15,3", "iPhone 14 Pro Max", 6),
    ("iPhone15,4", "iPhone 15", 8), ("iPhone16,1", "iPhone 15 Pro", 7),
    ("iPhone16,2", "iPhone 15 Pro Max", 9), ("iPhone17,3", "iPhone 16", 7),
    ("iPhone17,1", "iPhone 16 Pro", 6), ("iPhone17,2", "iPhone 16 Pro Max", 8),
    ("iPhone18,3", "iPhone 17", 4), ("iPhone18,2", "iPhone 17 Pro Max", 3),
    ("iPhone10,3", "iPhone X", 1),
)  # fmt: skip
#: (UA OS token, Safari version, weight). iOS 26 WebKit freezes the UA's OS version at 18_6.
_IOS = (
    ("18_6", "26.0", 12), ("18_6", "26.1", 18), ("18_6", "26.2", 14),
    ("18_3_2", "18.3", 6), ("18_5", "18.5", 9), ("18_6_2", "18.6", 12), ("18_7", "18.7", 6),
    ("17_5_1", "17.5", 4), ("17_6_1", "17.6", 5), ("17_7", "17.7", 3),
    ("16_6_1", "16.6", 2), ("16_7_10", "16.7", 3), ("15_8_3", "15.6", 1),
)  # fmt: skip
#: (brand, model code, Android versions, default browser, weight)
_ANDROIDS = (
    ("HUAWEI", "ALN-AL00", ("12",), "huawei", 7),
    ("HUAWEI", "BRA-AL00", ("12",), "huawei", 5),
    ("HUAWEI", "NOH-AN00", ("12",), "huawei", 4),
    ("HUAWEI", "JAD-AL50", ("12",), "huawei", 3),
    ("HUAWEI", "ELS-AN00", ("10",), "huawei", 2),
    ("HONOR", "PGT-AN10", ("14",), "", 4),
    ("HONOR", "ANY-AN00", ("12", "13"), "", 3),
    ("Xiaomi", "23127PN0CC", ("14", "15"), "miui", 5),
    ("Xiaomi", "2211133C", ("13", "14"), "miui", 4),
    ("Xiaomi", "24031PN0DC", ("14", "15"), "miui", 2),
    ("Redmi", "23113RKC6C", ("14",), "miui", 4),
    ("Redmi", "M2012K11AC", ("12", "13"), "miui", 3),
    ("Redmi", "22101317C", ("13", "14"), "miui", 3),
    ("Redmi", "M2006C3LC", ("10",), "miui", 1),
    ("OPPO", "PJZ110", ("14", "15"), "heytap", 3),
    ("OPPO", "PHZ110", ("13", "14"), "heytap", 3),
    ("OPPO", "PGEM10", ("12", "13"), "heytap", 3),
    ("OPPO", "PEGM00", ("11", "12"), "heytap", 2),
    ("OnePlus", "PJD110", ("14", "15"), "heytap", 2),
    ("OnePlus", "PHB110", ("13", "14"), "heytap", 1),
    ("realme", "RMX3888", ("14",), "heytap", 1),
    ("vivo", "V2309A", ("14", "15"), "vivo", 4),
    ("vivo", "V2324A", ("14", "15"), "vivo", 2),
    ("vivo", "V2241A", ("13", "14"), "vivo", 3),
    ("vivo", "V2219A", ("13",), "vivo", 2),
    ("vivo", "V2055A", ("11", "12"), "vivo", 2),
    ("samsung", "SM-S9280", ("14", "15"), "chrome", 1),
    ("samsung", "SM-S9110", ("13", "14"), "chrome", 1),
)
#: Cheap phones click farms buy in batches.
FARM_ANDROIDS = (
    ("Redmi", "M2006C3LC", ("10",), "miui", 1), ("Redmi", "220333QAG", ("11", "12"), "miui", 1),
    ("OPPO", "PDYM20", ("11",), "heytap", 1), ("vivo", "V2036A", ("10", "11"), "vivo", 1),
    ("HONOR", "KOZ-AL00", ("10",), "", 1),
)  # fmt: skip
_BUILDS = {
    "10": ("QKQ1.190910.002", "QP1A.190711.020"),
    "11": ("RKQ1.200826.002", "RP1A.200720.011"),
    "12": ("SKQ1.211006.001", "SP1A.210812.016", "SKQ1.220303.001"),
    "13": ("TP1A.220624.014", "TKQ1.221114.001", "TKQ1.220829.002"),
    "14": ("UP1A.231005.007", "UKQ1.230924.001", "UKQ1.231108.001"),
    "15": ("AP3A.240905.015.A2", "AQ3A.240912.001"),
}
#: Chromium of the Android System WebView (Weibo, Douyin, QQ webviews).
_WEBVIEWS = (
    "130.0.6723.107", "132.0.6834.163", "133.0.6943.137", "134.0.6998.135", "137.0.7151.115",
    "138.0.7204.180", "141.0.7390.122", "142.0.7444.171",
)  # fmt: skip
#: WeChat's own XWEB kernel: (Chromium, XWEB build)
_XWEBS = (("130.0.6723.103", 1300259), ("133.0.6943.137", 1330081), ("138.0.7204.180", 1380139))
#: 8.0.N with the build byte of the hex version code; newer versions are more common.
_WECHATS = ((58, 0x2B), (59, 0x2D), (60, 0x2F), (61, 0x31), (62, 0x33), (63, 0x35), (64, 0x37))
_WECHAT_WEIGHTS = (2, 3, 5, 8, 12, 16, 12)
_LOCALES = (("zh_CN", 930), ("zh_TW", 15), ("zh_HK", 20), ("en", 35))

_ACCEPT: dict[str, dict[str, str]] = {
    "zh_CN": {
        "ios": "zh-CN,zh-Hans;q=0.9",
        "webview": "zh-CN,zh;q=0.9,en-US;q=0.8,en;q=0.7",
        "android": "zh-CN,zh;q=0.9",
        "desktop": "zh-CN,zh;q=0.9",
        "edge": "zh-CN,zh;q=0.9,en;q=0.8,en-GB;q=0.7,en-US;q=0.6",
    },
    "zh_TW": {
        "ios": "zh-TW,zh-Hant;q=0.9",
        "webview": "zh-TW,zh;q=0.9,en-US;q=0.8,en;q=0.7",
        "android": "zh-TW,zh;q=0.9",
        "desktop": "zh-TW,zh;q=0.9,en-US;q=0.8,en;q=0.7",
        "edge": "zh-TW,zh;q=0.9,en;q=0.8,en-GB;q=0.7,en-US;q=0.6",
    },
    "zh_HK": {
        "ios": "zh-HK,zh-Hant;q=0.9,en;q=0.8",
        "webview": "zh-HK,zh;q=0.9,en-US;q=0.8,en;q=0.7",
        "android": "zh-HK,zh;q=0.9,en;q=0.8",
        "desktop": "zh-HK,zh;q=0.9,en;q=0.8",
        "edge": "zh-HK,zh;q=0.9,en;q=0.8,en-GB;q=0.7,en-US;q=0.6",
    },
    "en": {
        "ios": "en-US,en;q=0.9",
        "webview": "en-US,en;q=0.9,zh-CN;q=0.8,zh;q=0.7",
        "android": "en-US,en;q=0.9",
        "desktop": "en-GB,en;q=0.9,zh-CN;q=0.8",
        "edge": "en-US,en;q=0.9",
    },
}
#: Odd but honest Accept-Language values: old WeChat on iOS, some vendor browsers.
_QUIRKS = ("zh-cn", "zh-Hans-CN;q=1, en-CN;q=0.9", "zh-CN,en-US;q=0.9", "zh-CN")
_GREASE = ('"Not A(Brand";v="8"', '"Not_A Brand";v="24"', '"Not?A_Brand";v="99"')


def sec_ch_ua(major: str, product: str) -> str:
    """A plausible ``sec-ch-ua`` for a Chromium major version (GREASE rotates by version)."""
    variant = int(major) % 3
    grease = _GREASE[variant]
    chromium = f'"Chromium";v="{major}"'
    brands = [chromium, grease] if not product else [chromium, f'"{product}";v="{major}"', grease]
    if variant == 1:
        brands.reverse()
    elif variant == 2:
        brands.insert(0, brands.pop())
    return ", ".join(brands)


# -- devices --------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Device:
    family: str  # "ios", "android", "windows", "mac"
    os: str  # iOS UA token ("18_6") or Android version ("14")
    model: str  # iPhone identifier or Android model code
    name: str  # marketing name (iPhone) or brand (Android)
    build: str = ""
    safari: str = ""
    webview: str = ""
    xweb: tuple[str, int] = ("", 0)
    browser: str = "safari"
    browser_version: str = ""
    wechat: tuple[int, int] = (62, 0x33)
    webid: int = 0
    qq: tuple[int, int] = (1, 0)
    locale: str = "zh_CN"
    quirk: str = ""  # an odd Accept-Language this device's webviews send ("-" = none at all)
    xrw: bool = True  # Android webviews send x-requested-with
    vendor_hints: bool = True  # the vendor browser sends client hints
    _uas: dict[tuple[str, str], str] = field(default_factory=dict)
    _hints: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def mobile(self) -> bool:
        return self.family in ("ios", "android")

    # User-Agent --------------------------------------------------------------------------

    def ua(self, app: str, net: str) -> str:
        key = (app, net)
        found = self._uas.get(key)
        if found is None:
            found = self._uas[key] = self._build_ua(app, net)
        return found

    def _build_ua(self, app: str, net: str) -> str:
        if self.family == "ios":
            return self._ios_ua(app, net)
        if self.family == "android":
            return self._android_ua(app, net)
        return self._desktop_ua(app)

    def _ios_ua(self, app: str, net: str) -> str:
        base = (
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {self.os} like Mac OS X) "
            "AppleWebKit/605.1.15 (KHTML, like Gecko)"
        )
        wx_lang = self.locale
        minor, build = self.wechat
        if app == WECHAT:
            return (
                f"{base} Mobile/15E148 MicroMessenger/8.0.{minor}(0x1800{minor:02x}{build:02x}) "
                f"NetType/{net} Language/{wx_lang}"
            )
        if app == QQ:
            x, y = self.qq
            return (
                f"{base} Mobile/15E148 QQ/9.2.{x}.{y} V1_IPH_SQ_9.2.{x}_1_APP_A Pixel/1179 "
                f"MiniAppEnable SimpleUISwitch/0 StudyMode/0 CurrentMode/0 "
                f"CurrentFontScale/1.000000 QQTheme/1000 Core/WKWebView "
                f"Device/Apple({self.name}) NetType/{net} QBWebViewType/1 WKType/1"
            )
        if app == WEIBO:
            dotted = self.os.replace("_", ".")
            version = f"15.{self.qq[0] % 9}.0"
            return (
                f"{base}  Mobile/15E148 Weibo ({self.model}__weibo__{version}__iphone__os{dotted})"
            )
        if app == DOUYIN:
            return (
                f"{base} Mobile/15E148 aweme_36.{self.qq[0] % 6}.0 JsSdk/2.0 NetType/{net} "
                "Channel/App Store ByteLocale/zh Region/CN AppTheme/light "
                "BytedanceWebview/d8a21c6 WKWebView/1"
            )
        return f"{base} Version/{self.safari} Mobile/15E148 Safari/604.1"

    def _android_ua(self, app: str, net: str) -> str:
        if app == WECHAT:
            chrome, xweb = self.xweb
            minor, build = self.wechat
            return (
                f"Mozilla/5.0 (Linux; Android {self.os}; {self.model} Build/{self.build}; wv) "
                "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
                f"Chrome/{chrome} Mobile Safari/537.36 XWEB/{xweb} MMWEBSDK/20250904 "
                f"MMWEBID/{self.webid} MicroMessenger/8.0.{minor}.{2760 + minor * 4}"
                f"(0x2800{minor:02x}{build:02x}) WeChat/arm64 Weixin NetType/{net} "
                f"Language/{self.locale} ABI/arm64"
            )
        webview = (
            f"Mozilla/5.0 (Linux; Android {self.os}; {self.model} Build/{self.build}; wv) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
            f"Chrome/{self.webview} Mobile Safari/537.36"
        )
        if app == QQ:
            x, y = self.qq
            return (
                f"{webview} V1_AND_SQ_9.2.{x}_{9000 + x * 12}_YYB_D QQ/9.2.{x}.{y} "
                f"NetType/{net} WebP/0.4.1 AppId/537275637 Pixel/1080 StatusBarHeight/96 "
                "SimpleUISwitch/0 QQTheme/1000 StudyMode/0 CurrentMode/0 "
                "CurrentFontScale/1.0 GlobalDensityScale/0.9 AllowLandscape/false InMagicWin/0"
            )
        if app == WEIBO:
            return (
                f"{webview} Weibo ({self.name.upper()}-{self.model}__weibo__15.{self.qq[0] % 9}.0"
                f"__android__android{self.os})"
            )
        if app == DOUYIN:
            v = self.qq[0] % 6
            return (
                f"{webview} aweme_36{v}00 JsSdk/1.0 NetType/{net} "
                f"Channel/{self.name.lower()}_1128_64 "
                f"AppName/aweme app_version/36.{v}.0 ByteLocale/zh-CN Region/CN AppSkin/white "
                "AppTheme/light BytedanceWebview/d8a21c6 WebView/075113004008"
            )
        return self._android_browser_ua()

    def _android_browser_ua(self) -> str:
        model, os_, build, cv, bv = (
            self.model,
            self.os,
            self.build,
            self.webview,
            self.browser_version,
        )
        legacy = f"Mozilla/5.0 (Linux; U; Android {os_}; zh-cn; {model} Build/{build}) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/{cv}"  # noqa: E501
        if self.browser == "huawei":
            return (
                f"Mozilla/5.0 (Linux; Android {os_}; HarmonyOS; {model}; HMSCore 6.15.0.302) "
                f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.5735.196 "
                f"HuaweiBrowser/{bv} Mobile Safari/537.36"
            )
        if self.browser == "miui":
            return f"{legacy} Mobile Safari/537.36 XiaoMi/MiuiBrowser/{bv}"
        if self.browser == "heytap":
            return f"{legacy} Mobile Safari/537.36 HeyTapBrowser/{bv}"
        if self.browser == "vivo":
            return (
                f"Mozilla/5.0 (Linux; Android {os_}; {model} Build/{build}; wv) AppleWebKit/537.36 "
                f"(KHTML, like Gecko) Version/4.0 Chrome/{cv} Mobile Safari/537.36 VivoBrowser/{bv}"
            )
        if self.browser == "qqbrowser":
            return f"{legacy} MQQBrowser/{bv} Mobile Safari/537.36"
        if self.browser == "uc":
            return f"{legacy} UCBrowser/{bv} Mobile Safari/537.36"
        if self.browser == "quark":
            return f"{legacy} Quark/{bv} Mobile Safari/537.36"
        major = cv.split(".")[0]
        return (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{major}.0.0.0 Mobile Safari/537.36"
        )

    def _desktop_ua(self, app: str) -> str:
        major = self.webview.split(".")[0]
        if self.family == "mac":
            if app == WECHAT:
                return (
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
                    f"(KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36 NetType/WIFI "
                    "MicroMessenger/6.8.0(0x16080000) MacWechat/3.8.10(0x13080a10) XWEB/1227"
                )
            return (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                f"(KHTML, like Gecko) Version/{self.safari} Safari/605.1.15"
            )
        chrome = (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{major}.0.0.0 Safari/537.36"
        )
        if app == WECHAT:
            return (
                f"{chrome} NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) "
                "WindowsWechat(0x63090c33) UnifiedPCWindowsWechat(0xf2541510) XWEB/17071"
            )
        if self.browser == "edge":
            return f"{chrome} Edg/{major}.0.0.0"
        return chrome

    # Headers -----------------------------------------------------------------------------

    def hints(self, app: str) -> dict[str, str]:
        """Client hints, fetch metadata and x-requested-with this context sends (shared, do not
        modify)."""
        found = self._hints.get(app)
        if found is None:
            found = self._hints[app] = self._build_hints(app)
        return found

    def _build_hints(self, app: str) -> dict[str, str]:
        if self.family == "ios":
            # Fetch metadata since iOS 16.4; no client hints in WebKit.
            return {} if self.os.startswith(("15", "16")) else {"sec-fetch-site": "none"}
        if self.family == "mac" and app != WECHAT:
            return {"sec-fetch-site": "none"}
        if self.family in ("windows", "mac"):
            major = self.webview.split(".")[0]
            product = "Microsoft Edge" if self.browser == "edge" and app != WECHAT else ""
            if not product and app != WECHAT:
                product = "Google Chrome"
            platform = '"Windows"' if self.family == "windows" else '"macOS"'
            return {
                "sec-ch-ua": sec_ch_ua(major, product),
                "sec-ch-ua-mobile": "?0",
                "sec-ch-ua-platform": platform,
                "sec-fetch-site": "none",
            }
        hints: dict[str, str] = {}
        if app in IN_APP:
            chrome = self.xweb[0] if app == WECHAT else self.webview
            major = chrome.split(".")[0]
            hints["sec-ch-ua"] = sec_ch_ua(major, "Android WebView")
            hints["sec-ch-ua-mobile"] = "?1"
            hints["sec-ch-ua-platform"] = '"Android"'
            hints["sec-fetch-site"] = "none"
            if self.xrw:
                hints["x-requested-with"] = _PACKAGES[app]
            return hints
        if self.browser == "chrome" or self.vendor_hints:
            major = self.webview.split(".")[0]
            if self.browser == "huawei":
                major = "114"
            product = "Google Chrome" if self.browser == "chrome" else ""
            hints["sec-ch-ua"] = sec_ch_ua(major, product)
            hints["sec-ch-ua-mobile"] = "?1"
            hints["sec-ch-ua-platform"] = '"Android"'
        hints["sec-fetch-site"] = "none"
        return hints

    def accept_language(self, app: str) -> str:
        if self.quirk and app in IN_APP:
            return "" if self.quirk == "-" else self.quirk
        table = _ACCEPT[self.locale]
        if self.family == "ios":
            return table["ios"]
        if self.family == "android":
            return (
                table["webview"] if app in IN_APP or self.browser == "chrome" else table["android"]
            )
        if self.browser == "edge" and app != WECHAT:
            return table["edge"]
        return table["desktop"]


# -- factories ------------------------------------------------------------------------------

_IPHONE_MIX = Weighted(_IPHONES, [w for *_, w in _IPHONES])
_IOS_MIX = Weighted(_IOS, [w for *_, w in _IOS])
_ANDROID_MIX = Weighted(_ANDROIDS, [w for *_, w in _ANDROIDS])
_LOCALE_MIX = Weighted([name for name, _ in _LOCALES], [w for _, w in _LOCALES])
_WECHAT_MIX = Weighted(_WECHATS, _WECHAT_WEIGHTS)
_XWEB_MIX = Weighted(_XWEBS, (2, 5, 6))
_THIRD_PARTY = Weighted(("qqbrowser", "uc", "quark", "chrome"), (10, 8, 8, 4))
_DESKTOP_BROWSERS = Weighted(("chrome", "edge"), (6, 4))
_BROWSER_VERSIONS = {
    "huawei": ("15.0.4.312", "15.1.2.300", "16.0.1.301"),
    "miui": ("18.6.70717", "19.0.21203", "19.2.30110"),
    "heytap": ("40.8.32.1", "40.9.10.2", "41.0.6.1"),
    "vivo": ("23.8.10.3", "24.2.12.1", "24.5.0.2"),
    "qqbrowser": ("15.6", "15.8", "16.1"),
    "uc": ("17.5.2.1381", "17.8.0.1392", "18.0.6.1402"),
    "quark": ("7.9.5.751", "8.1.0.790", "8.2.5.802"),
    "chrome": ("",),
}


def _common(rng: Random, device: Device) -> Device:
    device.wechat = _WECHAT_MIX.draw(rng)
    device.qq = (below(rng, 31), 100 + below(rng, 29900))
    device.webid = 1000 + below(rng, 9000)
    device.locale = _LOCALE_MIX.draw(rng)
    roll = rng.random()
    if roll < 0.003:
        device.quirk = "-"
    elif roll < 0.05:
        device.quirk = rng.choice(_QUIRKS)
    return device


def ios_device(rng: Random, old: bool = False) -> Device:
    """An iPhone from the market mix; ``old`` picks the second-hand models farms buy."""
    if old:
        model, name, _ = rng.choice(_IPHONES[:3] + _IPHONES[-1:])
        token, safari, _ = rng.choice(_IOS[7:])
    else:
        model, name, _ = _IPHONE_MIX.draw(rng)
        token, safari, _ = _IOS_MIX.draw(rng)
    return _common(rng, Device("ios", token, model, name, safari=safari))


def android_device(
    rng: Random, catalogue: tuple[tuple[str, str, tuple[str, ...], str, int], ...] = _ANDROIDS
) -> Device:
    if catalogue is _ANDROIDS:
        brand, model, versions, default, _ = _ANDROID_MIX.draw(rng)
    else:
        brand, model, versions, default, _ = catalogue[below(rng, len(catalogue))]
    version = versions[below(rng, len(versions))]
    if brand in ("HUAWEI", "HONOR"):
        build = f"{brand}{model}"
    else:
        builds = _BUILDS[version]
        build = builds[below(rng, len(builds))]
    browser = default if default and rng.random() < 0.7 else ""
    if not browser:
        browser = _THIRD_PARTY.draw(rng)
    webviews = _WEBVIEWS[2:] if version >= "13" else _WEBVIEWS
    versions_of_browser = _BROWSER_VERSIONS[browser]
    device = Device(
        "android",
        version,
        model,
        brand,
        build=build,
        webview=webviews[below(rng, len(webviews))],
        xweb=_XWEB_MIX.draw(rng),
        browser=browser,
        browser_version=versions_of_browser[below(rng, len(versions_of_browser))],
        xrw=rng.random() < 0.85,
        vendor_hints=rng.random() < 0.6,
    )
    return _common(rng, device)


def emulator_device(rng: Random, spoofed_model: str | None = None) -> Device:
    """An Android emulator image; ``spoofed_model`` replaces the tell-tale model name."""
    device = android_device(rng)
    device.model = spoofed_model or "sdk_gphone64_x86_64"
    device.name = "google"
    device.os = "14"
    device.build = "UE1A.230829.036"
    device.webview = "113.0.5672.136"
    device.xweb = _XWEBS[0]
    device.xrw = True
    device.quirk = ""
    device.locale = "zh_CN"
    return device


def desktop_device(rng: Random) -> Device:
    mac = rng.random() < 0.25
    device = Device(
        "mac" if mac else "windows",
        "",
        "",
        "",
        safari=rng.choice(("18.3", "18.6", "26.1")),
        webview=rng.choice(_WEBVIEWS[3:]),
        browser=_DESKTOP_BROWSERS.draw(rng),
    )
    return _common(rng, device)


def random_device(rng: Random) -> Device:
    """A device drawn from the honest market mix: ~25% iPhone, ~71% Android, ~4% desktop."""
    roll = rng.random()
    if roll < 0.25:
        return ios_device(rng)
    if roll < 0.96:
        return android_device(rng)
    return desktop_device(rng)


def any_phone_model(rng: Random) -> str:
    """A real model code, for emulators that spoof their model."""
    return _ANDROID_MIX.draw(rng)[1]
