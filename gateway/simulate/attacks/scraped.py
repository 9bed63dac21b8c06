"""Scraped or posted links: a sharer's token on a public deal forum, clicked far beyond their reach.

A link lands on smzdm, Tieba, Douban, Hupu or Xianyu: posted by the sharer to farm rewards
(``self_posted``: the referrer is fraudulent) or copied there by a third party (``scraped``: the
clicks are abuse, the sharer is not). Traffic comes in 2-5 reposts over one to two days, each a
burst of ~250 clicks decaying with a 1-2 h half-life in *wall* time, so it keeps coming at night.

The volume matches an honest viral sharer; the differences are quieter: visitors from every
region and network instead of the sharer's city, more desktops and system browsers (forum
readers) than WeChat webviews, a forum Referer on about half the clicks (``sec-fetch-site:
cross-site``), sign-ups rarer (5%) but quick and practised (deal hunters), and a few link-checker
scripts from cloud servers.
"""

from __future__ import annotations

from functools import partial

from gateway.simulate.attacks.common import FORUMS, Context, Operation
from gateway.simulate.clock import HOUR
from gateway.simulate.devices import BROWSER, QQ, WECHAT, desktop_device, sec_ch_ua
from gateway.simulate.world import Campaign, Referrer

_CHECKERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "python-requests/2.31.0",
)


class ScrapedLink(Operation):
    kind = "scraped_link"
    variants = (("self_posted", 40), ("scraped", 60))

    def __init__(self, ctx: Context, campaign: Campaign, index: int) -> None:
        super().__init__(ctx, campaign, index)
        self.forum = ""
        self.checker_net = 0
        self.at(self.start_time(hours=40, crowd=0.6), self.begin)

    def begin(self, ts: float) -> None:
        rng = self.rng
        victim = self.honest_sharer(mark=self.variant == "self_posted")
        target = victim.referrer if victim is not None else self.own_seed()
        self.forum = rng.choice(FORUMS).format(n=rng.randint(10**8, 10**9 - 1))
        self.checker_net = self.ctx.plan.datacenter_net(rng)
        when = ts
        for _ in range(rng.randint(2, 5)):
            half_life = self.lognormal(1.4, 0.4) * HOUR
            for _ in range(int(self.lognormal(250.0, 0.6))):
                self.at(when + rng.expovariate(0.693 / half_life), partial(self._click, target))
            when += rng.uniform(3, 14) * HOUR

    def _click(self, target: Referrer, ts: float) -> None:
        rng, people = self.rng, self.ctx.people
        if rng.random() < 0.05:
            ua = rng.choice(_CHECKERS)
            headers = {"accept-language": "", "referer": ""}
            if ua.startswith("Mozilla"):
                headers["sec-ch-ua"] = sec_ch_ua("120", "Google Chrome")
            self.click(ts, target, self.ctx.plan.host(rng, self.checker_net), ua, headers, None)
            return
        person = people.new()
        if rng.random() < 0.25:
            person.device = desktop_device(rng)
        roll = rng.random()
        app = BROWSER if roll < 0.7 else (QQ if roll < 0.85 else WECHAT)
        referer = self.forum if app == BROWSER and rng.random() < 0.65 else ""
        ip, net = people.network(person, ts)
        visitor = person.visitor(app, rng)
        click_id = self.device_click(ts, target, person.device, app, ip, net, visitor, referer)
        if click_id is not None and rng.random() < 0.05:
            self.at(ts + 10.0 + self.lognormal(35.0, 0.5), partial(self._convert, click_id))

    def _convert(self, click_id: str, ts: float) -> None:
        self.convert(ts, click_id)
