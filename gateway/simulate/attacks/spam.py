"""Click spam: one link hammered with machine-regular timing, never converting.

Variants: ``burst`` (one phone or script, one address, a click every 1.2-3.5 s with 4% jitter,
for 5-30 minutes); ``rotating`` (10-40 proxy and datacenter exits cycled in order, 3-8 UAs, a
click every 4-10 s with 3% jitter, 1-3 hours: per-IP velocity stays low, the period does not
change); ``slow`` (an auto-clicker app on a phone on mobile data, a click every 45-120 s for 6-20
hours: under any per-minute threshold, but as regular as a clock). The spammer is the sharer
(inflating a leaderboard) except in ``sabotage``, where a rival hammers an honest sharer's link to
get it revoked: the clicks are fraud, the referrer is not.
"""

from __future__ import annotations

from functools import partial

from gateway.simulate.attacks.common import Context, Operation
from gateway.simulate.clock import HOUR
from gateway.simulate.devices import BROWSER, WECHAT, Device, random_device
from gateway.simulate.world import Campaign, Referrer

MAX_CLICKS = 3000


class ClickSpam(Operation):
    kind = "click_spam"
    variants = (("burst", 35), ("rotating", 30), ("slow", 20), ("sabotage", 15))

    def __init__(self, ctx: Context, campaign: Campaign, index: int) -> None:
        super().__init__(ctx, campaign, index)
        self.devices: list[Device] = []
        self.addresses: list[str] = []
        self.period = 1.0
        self.jitter = 0.0
        self.end = 0.0
        self.count = 0
        self.visitor: str | None = None
        self.at(self.start_time(hours=22, crowd=0.4), self.begin)

    def begin(self, ts: float) -> None:
        rng, plan = self.rng, self.ctx.plan
        if self.variant == "sabotage":
            victim = self.honest_sharer(mark=False)
            target: Referrer = victim.referrer if victim is not None else self.own_seed()
        else:
            target = self.target(0.6)
        if self.variant == "burst":
            self.period, self.jitter = rng.uniform(1.2, 3.5), 0.04
            duration = rng.uniform(5, 30) * 60
            self.devices = [random_device(rng)]
            self.addresses = [plan.residential_proxy(rng)]
        elif self.variant == "slow":
            self.period, self.jitter = rng.uniform(45, 120), 0.05
            duration = rng.uniform(6, 20) * HOUR
            self.devices = [random_device(rng)]
            region = plan.region(rng)
            pool = plan.pool(rng, region)
            self.addresses = [pool.ip(rng) for _ in range(rng.randint(3, 12))]
        else:
            self.period, self.jitter = rng.uniform(4, 10), 0.03
            duration = rng.uniform(1, 3) * HOUR
            self.devices = [random_device(rng) for _ in range(rng.randint(3, 8))]
            nets = [plan.datacenter_net(rng) for _ in range(rng.randint(1, 3))]
            self.addresses = [
                plan.residential_proxy(rng)
                if rng.random() < 0.6
                else plan.host(rng, rng.choice(nets))
                for _ in range(rng.randint(10, 40))
            ]
        self.visitor = self.fresh_visitor(0.5)
        self.end = ts + duration
        self.at(ts, partial(self._click, target))

    def _click(self, target: Referrer, ts: float) -> None:
        rng = self.rng
        self.count += 1
        if self.variant == "slow":
            # The phone's mobile data address changes about every half hour.
            address = self.addresses[int(self.count * self.period // 1800) % len(self.addresses)]
        else:
            address = self.addresses[self.count % len(self.addresses)]
        device = self.devices[self.count % len(self.devices)]
        app = BROWSER if self.variant in ("rotating", "sabotage") else WECHAT
        net = "WIFI" if self.variant != "slow" else "4G"
        self.device_click(ts, target, device, app, address, net, self.visitor)
        gap = self.period * (1.0 + rng.gauss(0.0, self.jitter))
        if ts + gap < self.end and self.count < MAX_CLICKS:
            self.at(ts + gap, partial(self._click, target))
