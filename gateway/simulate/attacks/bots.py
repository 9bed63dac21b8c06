"""Proxy and datacenter bots: scripts and browsers driven from servers, or through proxies.

Variants, from crude to careful:

- ``headless``: headless Chrome on cloud servers (1-4 datacenter /24s, 2-40 addresses), its own
  UA and ``sec-ch-ua`` brands, puppeteer's default ``en-US`` Accept-Language or none, a new
  browser context (new visitor id) per click, metronome-like pacing;
- ``scripted``: HTTP libraries (python-requests, Go, okhttp, Java, Dalvik) with no browser
  headers at all and no cookies, from datacenter addresses; cannot sign up;
- ``spoofed_mobile``: a handful of copied WeChat/Safari UA strings sent from datacenter addresses
  with headers that contradict them (desktop client hints behind an iPhone UA, an Android WeChat
  UA without x-requested-with, a bare ``zh-CN``), random (Poisson) pacing;
- ``residential_proxy``: the careful one: a pool of 60-300 realistic device profiles with the
  headers those devices really send, each click through a residential or mobile proxy exit (the
  same carrier NAT and broadband addresses honest people use). What remains visible is the
  behaviour: clicks spread flat across night and day, concentrated on a few links, sign-ups 6-15 s
  after the click, and accounts that never share.

300-2,000 clicks over 2-20 hours per operation, on 1-3 referrers (the operator's own seed accounts
or customers').
"""

from __future__ import annotations

from functools import partial

from gateway.simulate.attacks.common import Context, Operation
from gateway.simulate.clock import HOUR
from gateway.simulate.devices import BROWSER, WECHAT, Device, random_device, sec_ch_ua
from gateway.simulate.world import Campaign, Referrer

_SCRIPTS = (
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "Apache-HttpClient/4.5.14 (Java/17.0.10)",
    "Dalvik/2.1.0 (Linux; U; Android 12; M2102J2SC Build/SKQ1.211006.001)",
)
_CONVERSION = {"headless": 0.08, "scripted": 0.0, "spoofed_mobile": 0.05, "residential_proxy": 0.12}


class DatacenterBot(Operation):
    kind = "datacenter_bot"
    variants = (
        ("headless", 25),
        ("scripted", 20),
        ("spoofed_mobile", 30),
        ("residential_proxy", 25),
    )

    def __init__(self, ctx: Context, campaign: Campaign, index: int) -> None:
        super().__init__(ctx, campaign, index)
        self.targets: list[Referrer] = []
        self.addresses: list[str] = []
        self.profiles: list[Device] = []
        self.uas: list[str] = []
        self.interval = 1.0
        self.end = 0.0
        self.major = "131"
        self.at(self.start_time(hours=22, crowd=0.3), self.begin)

    def begin(self, ts: float) -> None:
        rng, plan = self.rng, self.ctx.plan
        self.targets = [self.target(0.3) for _ in range(rng.randint(1, 3))]
        clicks = rng.randint(300, 2000)
        duration = min(20.0, max(2.0, self.lognormal(5.0, 0.7))) * HOUR
        self.interval = duration / clicks
        self.end = ts + duration
        nets = [plan.datacenter_net(rng) for _ in range(rng.randint(1, 4))]
        self.addresses = [plan.host(rng, rng.choice(nets)) for _ in range(rng.randint(2, 40))]
        if self.variant == "headless":
            major = rng.choice(("131", "133", "136"))
            self.uas = [
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"HeadlessChrome/{major}.0.0.0 Safari/537.36"
            ]
            self.major = major
        elif self.variant == "scripted":
            self.uas = [rng.choice(_SCRIPTS)]
        elif self.variant == "spoofed_mobile":
            copied = [random_device(rng) for _ in range(rng.randint(2, 10))]
            self.uas = [d.ua(rng.choice((WECHAT, BROWSER)), "WIFI") for d in copied if d.mobile]
            if not self.uas:
                self.uas = [copied[0].ua(WECHAT, "WIFI")]
        else:
            self.profiles = [random_device(rng) for _ in range(rng.randint(60, 300))]
        self.at(ts, self._click)

    def _headers(self, ua: str) -> dict[str, str]:
        rng = self.rng
        if self.variant == "headless":
            return {
                "accept-language": "en-US,en;q=0.9" if rng.random() < 0.7 else "",
                "referer": "",
                "sec-ch-ua": sec_ch_ua(self.major, "HeadlessChrome"),
                "sec-ch-ua-mobile": "?0",
                "sec-ch-ua-platform": '"Linux"',
                "sec-fetch-site": "none",
            }
        if self.variant == "scripted":
            return {"accept-language": "", "referer": ""}
        headers = {
            "accept-language": rng.choice(("zh-CN", "zh-CN,zh;q=0.9", "zh-CN,zh;q=0.8")),
            "referer": "",
        }
        if "iPhone" in ua and rng.random() < 0.6:
            headers["sec-ch-ua"] = sec_ch_ua("134", "Google Chrome")
            headers["sec-ch-ua-mobile"] = "?0"
            headers["sec-ch-ua-platform"] = rng.choice(('"Windows"', '"Linux"'))
        elif "Android" in ua:
            headers["sec-ch-ua"] = sec_ch_ua("134", "Google Chrome")
            headers["sec-ch-ua-mobile"] = "?1"
            headers["sec-ch-ua-platform"] = '"Android"'
        return headers

    def _click(self, ts: float) -> None:
        rng, plan = self.rng, self.ctx.plan
        target = self.targets[0] if rng.random() < 0.6 else rng.choice(self.targets)
        if self.variant == "residential_proxy":
            device = rng.choice(self.profiles)
            app = WECHAT if rng.random() < 0.7 else BROWSER
            ip = plan.residential_proxy(rng)
            visitor = self.fresh_visitor(0.5)
            click_id = self.device_click(ts, target, device, app, ip, "WIFI", visitor)
            gap = rng.expovariate(1.0 / self.interval)
        else:
            ua = rng.choice(self.uas)
            visitor = visitor_for(self.variant, self)
            click_id = self.click(
                ts, target, rng.choice(self.addresses), ua, self._headers(ua), visitor
            )
            if self.variant == "spoofed_mobile":
                gap = rng.expovariate(1.0 / self.interval)
            else:
                gap = self.interval * rng.uniform(0.9, 1.1)
        if click_id is not None and rng.random() < _CONVERSION[self.variant]:
            self.at(ts + 6.0 + self.lognormal(4.0, 0.3), partial(self._convert, click_id))
        if ts + gap < self.end:
            self.at(ts + gap, self._click)

    def _convert(self, click_id: str, ts: float) -> None:
        self.convert(ts, click_id)


def visitor_for(variant: str, op: Operation) -> str | None:
    if variant == "headless":
        return op.fresh_visitor(0.0)
    if variant == "scripted":
        return None
    return op.fresh_visitor(0.7)
