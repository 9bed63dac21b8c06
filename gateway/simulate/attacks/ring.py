"""Rings: a "mutual help" group of sharers converting each other's links.

4-10 real people in different cities, each with their own phone and home. They join the campaign
one after another through each other's links (member i through member i-1), then, in 2-5 evening
rounds called in the group chat, each member signs up alternate accounts on 1-3 other members'
links, a minute or two apart. The alternates run on the member's own phone (``clone_app``: a cloned
WeChat, same UA as the member's own clicks) or on a spare phone at home (``spare_phones``). No
member ever refers themselves, so per-sharer self-referral rules see nothing; the structure shows
in the graph: actors whose devices convert on each other's links, in cycles. When a second campaign
runs, the members join it in the reverse order, closing the ring across campaigns.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from gateway.simulate.attacks.common import Context, Operation
from gateway.simulate.clock import SHANGHAI
from gateway.simulate.devices import WECHAT, Device, android_device
from gateway.simulate.people import Person
from gateway.simulate.world import Campaign, Referrer


class Ring(Operation):
    kind = "ring"
    variants = (("clone_app", 60), ("spare_phones", 40))

    def __init__(self, ctx: Context, campaign: Campaign, index: int) -> None:
        super().__init__(ctx, campaign, index)
        rng = self.rng
        self.members: list[Person] = [ctx.people.new() for _ in range(rng.randint(4, 10))]
        for member in self.members:
            member.vpn = None
            if member.home is None:
                member.home = ctx.plan.broadband_host(rng, member.region)
        self.spares: list[Device] = [android_device(rng) for _ in self.members]
        self.links: dict[tuple[int, int], Referrer] = {}
        self.at(self.start_time(hours=80, crowd=0.8), self.begin)

    def begin(self, ts: float) -> None:
        rng = self.rng
        first = self.own_seed()
        self.members[0].user = first.user
        self.members[0].joined |= 1 << self.campaign.index
        self.links[(self.campaign.index, 0)] = first
        when = ts
        for i in range(1, len(self.members)):
            when += 60.0 + self.lognormal(480.0, 0.6)
            self.at(when, partial(self._join, self.campaign, i, i - 1))
        day = datetime.fromtimestamp(when, SHANGHAI).replace(hour=0, minute=0, second=0)
        for offset in range(rng.randint(2, 5)):
            moment = day + timedelta(
                days=offset, hours=rng.randint(19, 22), minutes=rng.randint(0, 59)
            )
            start = max(moment.timestamp(), when + 600.0)
            self.at(start, self._round)
        for other in self.ctx.campaigns:
            if other is not self.campaign and other.start < when + 1800.0 < other.end:
                self.at(when + 1800.0, partial(self._open_other, other), other)

    def _open_other(self, campaign: Campaign, ts: float) -> None:
        """The last member signs up for the other campaign directly; the others follow through
        each other's links in the reverse order."""
        last = len(self.members) - 1
        person = self.members[last]
        if person.user is None:
            person.user = self.world.new_user()
        if person.user in campaign.joined:
            return
        campaign.joined.add(person.user)
        anchor = self.world.referrer(campaign, person.user, seed=True, joined=None)
        self.world.mark(anchor, self.kind)
        self.links[(campaign.index, last)] = anchor
        when = ts
        for i in range(last - 1, -1, -1):
            when += 60.0 + self.lognormal(300.0, 0.6)
            self.at(when, partial(self._join, campaign, i, i + 1), campaign)

    def _join(self, campaign: Campaign, member: int, via: int, ts: float) -> None:
        referrer = self.links.get((campaign.index, via))
        person = self.members[member]
        if referrer is None:
            return
        ip, net = self.ctx.people.network(person, ts)
        visitor = person.visitor(WECHAT, self.rng)
        click_id = self.device_click(
            ts, referrer, person.device, WECHAT, ip, net, visitor, campaign=campaign
        )
        if click_id is not None:
            delay = 20.0 + self.lognormal(60.0, 0.6)
            self.at(ts + delay, partial(self._joined, campaign, member, click_id), campaign)

    def _joined(self, campaign: Campaign, member: int, click_id: str, ts: float) -> None:
        person = self.members[member]
        user = self.convert(ts, click_id, person.user, campaign)
        if user is not None:
            person.user = user
            person.joined |= 1 << campaign.index
            referrer = self.world.referrer(campaign, user, seed=False, joined=ts)
            self.world.mark(referrer, self.kind)
            self.links[(campaign.index, member)] = referrer

    def _round(self, ts: float) -> None:
        rng = self.rng
        when = ts
        index = self.campaign.index
        for i in range(len(self.members)):
            others = [j for j in range(len(self.members)) if j != i and (index, j) in self.links]
            for j in rng.sample(others, min(len(others), rng.randint(1, 3))):
                when += 20.0 + self.lognormal(70.0, 0.6)
                self.at(when, partial(self._alt, i, self.links[(index, j)]))

    def _alt(self, member: int, referrer: Referrer, ts: float) -> None:
        person, rng = self.members[member], self.rng
        if self.variant == "spare_phones":
            device, ip, net = self.spares[member], person.home or "", "WIFI"
            visitor = self.fresh_visitor(0.5)
        else:
            device = person.device
            ip, net = self.ctx.people.network(person, ts)
            visitor = person.visitor(WECHAT, rng)
        click_id = self.device_click(ts, referrer, device, WECHAT, ip, net, visitor)
        if click_id is not None:
            self.at(ts + 20.0 + self.lognormal(40.0, 0.5), partial(self._convert, click_id))

    def _convert(self, click_id: str, ts: float) -> None:
        self.convert(ts, click_id)
