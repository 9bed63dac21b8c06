"""Click farms: rows of real phones worked by hand, clicking a few referrers' links at scale.

A farm has 8-28 phones bought in batches (one or two cheap Android models, or second-hand
iPhones), all set to zh-CN, opening the links in WeChat like everybody else. Variants: phones on
the farm's Wi-Fi (1-3 residential /24s, a handful of router addresses: looks like a large household
or a venue), on SIM cards (``mobile_proxy``: carrier NAT addresses shared with honest users, so IP
and prefix velocity see nothing unusual), or both (``mixed``). Workers run 1-2 shifts of 25-80
minutes, day or night, one task every ~50 s per phone; a task clicks a target link and, for 25-60%
of tasks, signs up a fresh account 20-60 s later (practised and regular), then clears the app data
(a new or no visitor id). The targets are 1-4 referrers: the farm's own seed accounts or paying
customers who also have honest friends clicking their link. The fresh accounts never share.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from gateway.simulate.attacks.common import Context, Operation
from gateway.simulate.clock import HOUR
from gateway.simulate.devices import FARM_ANDROIDS, WECHAT, Device, android_device, ios_device
from gateway.simulate.networks import NatPool
from gateway.simulate.world import Campaign, Referrer


@dataclass(slots=True, eq=False)
class Phone:
    device: Device
    router: str  # the Wi-Fi address it sits behind ("" on SIM only)
    pool: NatPool
    visitor: str | None = None


class ClickFarm(Operation):
    kind = "click_farm"
    variants = (("residential", 45), ("mobile_proxy", 35), ("mixed", 20))

    def __init__(self, ctx: Context, campaign: Campaign, index: int) -> None:
        super().__init__(ctx, campaign, index)
        self.targets: list[Referrer] = []
        self.weights: list[float] = []
        self.phones: list[Phone] = []
        self.conversion = 0.0
        self.at(self.start_time(hours=30, crowd=0.4), self.begin)

    def begin(self, ts: float) -> None:
        rng, plan = self.rng, self.ctx.plan
        self.targets = [self.target(0.5) for _ in range(rng.randint(1, 4))]
        self.weights = [rng.uniform(0.5, 2.0) for _ in self.targets]
        self.conversion = rng.uniform(0.25, 0.6)
        region = plan.region(rng)
        routers: list[str] = []
        for _ in range(rng.randint(1, 3)):
            net = rng.choice(region.broadband)
            routers.extend(plan.broadband_host(rng, region, net) for _ in range(rng.randint(1, 3)))
        pools = [plan.pool(rng, region) for _ in range(rng.randint(1, 2))]
        iphones = rng.random() < 0.2
        batch = [FARM_ANDROIDS[i] for i in rng.sample(range(len(FARM_ANDROIDS)), rng.randint(1, 2))]
        for _ in range(rng.randint(8, 28)):
            device = ios_device(rng, old=True) if iphones else android_device(rng, tuple(batch))
            device.locale, device.quirk = "zh_CN", ""
            on_wifi = self.variant == "residential" or (
                self.variant == "mixed" and rng.random() < 0.5
            )
            self.phones.append(
                Phone(device, rng.choice(routers) if on_wifi else "", rng.choice(pools))
            )
        when = ts
        for _ in range(rng.randint(1, 2)):
            self._shift(when)
            when += rng.uniform(3, 20) * HOUR

    def _shift(self, ts: float) -> None:
        end = ts + self.rng.uniform(25, 80) * 60
        for phone in self.phones:
            self.at(ts + self.rng.uniform(0, 150), partial(self._task, phone, end))

    def _task(self, phone: Phone, end: float, ts: float) -> None:
        rng = self.rng
        target = rng.choices(self.targets, self.weights)[0]
        if phone.router:
            ip, net = phone.router, "WIFI"
        else:
            ip, net = phone.pool.ip(rng), "4G" if rng.random() < 0.5 else "5G"
        click_id = self.device_click(ts, target, phone.device, WECHAT, ip, net, phone.visitor)
        took = 0.0
        if click_id is not None and rng.random() < self.conversion:
            took = 20.0 + self.lognormal(22.0, 0.35)
            self.at(ts + took, partial(self._convert, click_id))
        phone.visitor = self.fresh_visitor(0.6)
        after = ts + took + 8.0 + self.lognormal(45.0, 0.45)
        if after < end:
            self.at(after, partial(self._task, phone, end))

    def _convert(self, click_id: str, ts: float) -> None:
        self.convert(ts, click_id)
