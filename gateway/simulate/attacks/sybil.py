"""Sybil chains: one operator grows a deep referral chain of fake accounts in minutes.

From a root account (their own seed, or a real participant's account they turned), the operator
opens the newest account's link on one of 1-4 phones (one may be an emulator), signs up the next
account 20-60 s later, and repeats: depth 10-50, now and then a second child (15%). Variants:

- ``fast``: a step every 1-3 minutes, all from home Wi-Fi and a phone hotspot (two addresses);
- ``slow``: human-looking pauses (median 12 minutes per step), spreading the chain over a day,
  which hides it from "deep within minutes" rules but not from "few devices, few networks";
- ``rotating_ip``: fast, but through a 4G modem that reconnects every step (a new carrier NAT
  address each time, addresses honest people share).
"""

from __future__ import annotations

from functools import partial

from gateway.simulate.attacks.common import Context, Operation
from gateway.simulate.devices import WECHAT, Device, emulator_device, random_device
from gateway.simulate.networks import NatPool
from gateway.simulate.world import Campaign, Referrer


class SybilChain(Operation):
    kind = "sybil_chain"
    variants = (("fast", 50), ("slow", 25), ("rotating_ip", 25))

    def __init__(self, ctx: Context, campaign: Campaign, index: int) -> None:
        super().__init__(ctx, campaign, index)
        rng = self.rng
        self.depth = rng.randint(10, 50)
        self.accounts = 0
        self.devices: list[Device] = [random_device(rng) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.3:
            self.devices[-1] = emulator_device(rng)
        region = ctx.plan.region(rng)
        self.home = ctx.plan.broadband_host(rng, region)
        self.pool: NatPool = ctx.plan.pool(rng, region)
        self.hotspot = self.pool.ip(rng)
        self.at(self.start_time(hours=30, crowd=0.5), self.begin)

    def begin(self, ts: float) -> None:
        self._next(self.target(0.3), 1, ts)

    def _step_delay(self) -> float:
        if self.variant == "slow":
            return 30.0 + self.lognormal(720.0, 0.8)
        return 20.0 + self.lognormal(50.0, 0.5)

    def _next(self, parent: Referrer, depth: int, ts: float) -> None:
        children = 2 if self.rng.random() < 0.15 and self.accounts < self.depth else 1
        for _ in range(children):
            self.at(ts + self._step_delay(), partial(self._click, parent, depth))

    def _click(self, parent: Referrer, depth: int, ts: float) -> None:
        rng = self.rng
        device = rng.choice(self.devices)
        if self.variant == "rotating_ip":
            ip, net = self.pool.ip(rng), "4G"
        elif rng.random() < 0.6:
            ip, net = self.home, "WIFI"
        else:
            ip, net = self.hotspot, "4G"
        click_id = self.device_click(ts, parent, device, WECHAT, ip, net, self.fresh_visitor(0.5))
        if click_id is not None:
            self.at(ts + 20.0 + self.lognormal(25.0, 0.4), partial(self._convert, click_id, depth))

    def _convert(self, click_id: str, depth: int, ts: float) -> None:
        user = self.convert(ts, click_id)
        if user is None:
            return
        self.accounts += 1
        if depth < self.depth:
            self._next(self.child_referrer(user, ts), depth + 1, ts)
