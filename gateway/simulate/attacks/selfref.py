"""Self-referral: a real sharer opens their own link and signs up alternate accounts.

The sharer is an ordinary participant or seed whose friends click their link honestly too. Within
hours of starting to share they convert 1-4 alternate accounts, a few minutes apart, each 15-90 s
after its click. Variants, each evading one signal:

- ``same_device``: a cloned WeChat (two accounts on one phone): same UA, and the same visitor id
  whenever the webview keeps cookies;
- ``other_browser``: the system browser of the same phone: a different UA and visitor id, the
  same address;
- ``spare_phone``: an old phone at home: a different device on the household's address, which is
  what an honest family invitation looks like;
- ``mobile_data``: the same phone switched to mobile data: a carrier NAT address shared with
  hundreds of strangers.

One scheme in five grows a little chain: an alternate account shares, and the sharer converts
another alternate account on it from the same phone.
"""

from __future__ import annotations

from functools import partial

from gateway.simulate.attacks.common import Context, Operation
from gateway.simulate.devices import BROWSER, WECHAT, Device, ios_device
from gateway.simulate.people import Person
from gateway.simulate.world import Referrer, Sharer


class SelfReferral(Operation):
    kind = "self_referral"
    variants = (
        ("same_device", 35),
        ("other_browser", 25),
        ("spare_phone", 20),
        ("mobile_data", 20),
    )

    def __init__(self, ctx: Context, sharer: Sharer, index: int, ts: float) -> None:
        super().__init__(ctx, sharer.campaign, index, actor=sharer.person.actor)
        self.sharer = sharer
        self.person: Person = sharer.person
        self.spare: Device = ios_device(self.rng, old=True)
        self.world.mark(sharer.referrer, self.kind)
        when = ctx.calendar.after(ts, self.lognormal(0.5, 1.0))
        for _ in range(self.rng.randint(1, 4)):
            self.at(when, partial(self._alt, sharer.referrer, True))
            when += 60.0 + self.lognormal(300.0, 0.8)

    def _network(self, ts: float) -> tuple[str, str]:
        person, rng = self.person, self.rng
        if self.variant == "spare_phone":
            if person.home is None:
                person.home = self.ctx.plan.broadband_host(rng, person.region)
            return person.home, "WIFI"
        if self.variant == "mobile_data":
            return person.pool.ip(rng), "5G"
        return self.ctx.people.network(person, ts)

    def _alt(self, referrer: Referrer, may_chain: bool, ts: float) -> None:
        rng, person = self.rng, self.person
        ip, net = self._network(ts)
        if self.variant == "spare_phone":
            device, app = self.spare, WECHAT
            visitor = self.fresh_visitor(0.5)
        elif self.variant == "other_browser":
            device, app = person.device, BROWSER
            visitor = person.visitor(BROWSER, rng)
        else:
            device, app = person.device, WECHAT
            visitor = person.visitor(WECHAT, rng)
        click_id = self.device_click(ts, referrer, device, app, ip, net, visitor)
        if click_id is not None:
            delay = 15.0 + self.lognormal(35.0, 0.6)
            self.at(ts + delay, partial(self._convert, click_id, may_chain))

    def _convert(self, click_id: str, may_chain: bool, ts: float) -> None:
        user = self.convert(ts, click_id)
        if user is not None and may_chain and self.rng.random() < 0.2:
            alt = self.child_referrer(user, ts)
            when = ts + 60.0 + self.lognormal(600.0, 0.7)
            self.at(when, partial(self._alt, alt, False))
