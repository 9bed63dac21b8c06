"""Star bursts: dozens of accounts registered under one sharer within minutes.

A registration studio signs 20-120 accounts up under one hub (their own seed account, or a
participant who bought the service) in an 8-45 minute window, at a near-regular cadence (the
window divided evenly, +-20%), each sign-up 15-40 s after its click; about one in ten fails.
Variants: ``one_network`` (3-12 phones behind one or two addresses of one broadband /24),
``sim_pool`` (the same phones on a SIM pool: a different carrier NAT address almost every time,
addresses honest people share), ``emulators`` (one emulator image spoofing a different real model
name per account, so UAs differ but the build, WebView version and /24 do not). One child in ten
shares on and gets one to three accounts of its own from the same devices.
Honest look-alikes: a viral post at the festival peak, a household, a restaurant's Wi-Fi.
"""

from __future__ import annotations

from functools import partial

from gateway.simulate.attacks.common import Context, Operation
from gateway.simulate.devices import WECHAT, Device, any_phone_model, emulator_device, random_device
from gateway.simulate.networks import NatPool
from gateway.simulate.world import Campaign, Referrer


class StarBurst(Operation):
    kind = "star_burst"
    variants = (("one_network", 40), ("sim_pool", 35), ("emulators", 25))

    def __init__(self, ctx: Context, campaign: Campaign, index: int) -> None:
        super().__init__(ctx, campaign, index)
        rng, plan = self.rng, ctx.plan
        region = plan.region(rng)
        net = rng.choice(region.broadband)
        self.addresses = [plan.broadband_host(rng, region, net) for _ in range(rng.randint(1, 2))]
        self.pools: list[NatPool] = [plan.pool(rng, region) for _ in range(rng.randint(1, 2))]
        self.devices: list[Device] = [random_device(rng) for _ in range(rng.randint(3, 12))]
        self.at(self.start_time(hours=30, crowd=0.6), self.begin)

    def begin(self, ts: float) -> None:
        rng = self.rng
        hub = self.target(0.4)
        children = rng.randint(20, 120)
        window = rng.uniform(8, 45) * 60
        step = window / children
        for k in range(children):
            self.at(
                ts + step * (k + rng.uniform(-0.2, 0.2)) + step, partial(self._child, hub, True)
            )

    def _device(self) -> Device:
        if self.variant == "emulators":
            return emulator_device(self.rng, any_phone_model(self.rng))
        return self.rng.choice(self.devices)

    def _child(self, parent: Referrer, may_share: bool, ts: float) -> None:
        rng = self.rng
        if self.variant == "sim_pool":
            ip, net = rng.choice(self.pools).ip(rng), "4G"
        else:
            ip, net = rng.choice(self.addresses), "WIFI"
        device = self._device()
        click_id = self.device_click(ts, parent, device, WECHAT, ip, net, self.fresh_visitor(0.55))
        if click_id is not None and rng.random() < 0.9:
            delay = 15.0 + self.lognormal(12.0, 0.35)
            self.at(ts + delay, partial(self._convert, click_id, may_share))

    def _convert(self, click_id: str, may_share: bool, ts: float) -> None:
        user = self.convert(ts, click_id)
        if user is not None and may_share and self.rng.random() < 0.1:
            referrer = self.child_referrer(user, ts)
            when = ts
            for _ in range(self.rng.randint(1, 3)):
                when += 30.0 + self.lognormal(90.0, 0.5)
                self.at(when, partial(self._child, referrer, False))
