"""What every attack shares: its label and randomness, accounts, timing and emitting as the
attacker."""

from __future__ import annotations

from dataclasses import dataclass
from math import log
from random import Random

from gateway.simulate.clock import HOUR, Calendar
from gateway.simulate.devices import BROWSER, Device
from gateway.simulate.honest import Honest
from gateway.simulate.networks import AddressPlan
from gateway.simulate.people import People, visitor_id
from gateway.simulate.world import Action, Campaign, Label, Referrer, Sharer, World

#: Where public posts of referral links live (deal forums, Tieba, Douban groups, Hupu, Xianyu).
FORUMS = (
    "https://www.smzdm.com/p/{n}/",
    "https://post.smzdm.com/p/{n}/",
    "https://tieba.baidu.com/p/{n}",
    "https://www.douban.com/group/topic/{n}/",
    "https://bbs.hupu.com/{n}.html",
    "https://www.goofish.com/item?id={n}",
)


@dataclass(slots=True)
class Context:
    seed: int
    world: World
    honest: Honest
    people: People
    plan: AddressPlan
    calendar: Calendar
    campaigns: list[Campaign]


class Operation:
    """One attack operation (or one fraudulent person's scheme)."""

    kind = ""
    #: (variant, weight): the first operations take each variant once, later ones draw by weight.
    variants: tuple[tuple[str, float], ...] = (("", 1.0),)

    def __init__(self, ctx: Context, campaign: Campaign, index: int, actor: str = "") -> None:
        self.ctx = ctx
        self.world = ctx.world
        self.campaign = campaign
        # Each operation has its own stream: adding one does not reshuffle the others.
        self.rng = Random(f"{ctx.seed}:{self.kind}:{index}")
        names = [name for name, _ in self.variants]
        if index <= len(names):
            # The first operations of a kind cover every variant, in a seeded order.
            Random(f"{ctx.seed}:{self.kind}:variants").shuffle(names)
            variant = names[index - 1]
        else:
            variant = self.rng.choices(names, [weight for _, weight in self.variants])[0]
        self.label = Label(True, self.kind, actor or f"{self.kind}-{index}", variant)

    @property
    def variant(self) -> str:
        return self.label.variant

    # Accounts ---------------------------------------------------------------------------

    def own_seed(self, campaign: Campaign | None = None) -> Referrer:
        """A fresh account the attacker signed up directly (a seed sharer) to collect rewards."""
        campaign = campaign or self.campaign
        user = self.world.new_user()
        campaign.joined.add(user)
        referrer = self.world.referrer(campaign, user, seed=True, joined=None)
        self.world.mark(referrer, self.kind)
        return referrer

    def honest_sharer(self, mark: bool) -> Sharer | None:
        """An existing honest sharer: a customer of the attack (``mark``) or its victim."""
        sharers = self.campaign.sharers
        if not sharers:
            return None
        sharer = sharers[self.rng.randrange(len(sharers))]
        if mark:
            self.world.mark(sharer.referrer, self.kind)
        return sharer

    def target(self, customer_share: float) -> Referrer:
        """A referrer to profit: an honest-looking customer or, otherwise, an own seed account."""
        if self.rng.random() < customer_share:
            sharer = self.honest_sharer(mark=True)
            if sharer is not None:
                return sharer.referrer
        return self.own_seed()

    def child_referrer(self, user: str, ts: float) -> Referrer:
        """An account the attack created through a conversion starts sharing its own link."""
        referrer = self.world.referrer(self.campaign, user, seed=False, joined=ts)
        self.world.mark(referrer, self.kind)
        return referrer

    # Timing -----------------------------------------------------------------------------

    def start_time(self, hours: float, crowd: float = 0.5) -> float:
        """When the operation starts: with the crowd (activity-weighted, hiding in the festival
        surge) with probability ``crowd``, otherwise any time of day or night."""
        cal, rng, campaign = self.ctx.calendar, self.rng, self.campaign
        low = campaign.start + 4 * HOUR
        high = max(low + HOUR, campaign.end - hours * HOUR)
        if rng.random() < crowd:
            return cal.moment(rng.uniform(cal.activity(low), cal.activity(high)))
        return rng.uniform(low, high)

    def at(self, ts: float, action: Action, campaign: Campaign | None = None) -> None:
        """Schedule ``action`` unless the campaign has ended by then."""
        if ts < (campaign or self.campaign).end:
            self.world.at(ts, action)

    def lognormal(self, median: float, sigma: float) -> float:
        return self.rng.lognormvariate(log(median), sigma)

    # Emitting ---------------------------------------------------------------------------

    def click(
        self,
        ts: float,
        referrer: Referrer,
        ip: str,
        ua: str,
        headers: dict[str, str],
        visitor: str | None,
        campaign: Campaign | None = None,
    ) -> str | None:
        return self.world.click(
            ts, campaign or self.campaign, referrer, ip, ua, headers, visitor, self.label
        )

    def device_click(
        self,
        ts: float,
        referrer: Referrer,
        device: Device,
        app: str,
        ip: str,
        net: str,
        visitor: str | None,
        referer: str = "",
        campaign: Campaign | None = None,
    ) -> str | None:
        """A click with the headers ``device`` really sends in ``app``."""
        if not device.mobile and app != "wechat":
            app = BROWSER
        headers = {"accept-language": device.accept_language(app), "referer": referer}
        headers.update(device.hints(app))
        if referer and "sec-fetch-site" in headers:
            headers["sec-fetch-site"] = "cross-site"
        return self.click(ts, referrer, ip, device.ua(app, net), headers, visitor, campaign)

    def fresh_visitor(self, cookieless: float) -> str | None:
        """After clearing app data: no cookie at all, or a brand-new visitor id."""
        return None if self.rng.random() < cookieless else visitor_id(self.rng)

    def convert(
        self, ts: float, click_id: str, user: str | None = None, campaign: Campaign | None = None
    ) -> str | None:
        """Convert ``click_id`` with ``user`` or a freshly registered account."""
        return self.world.convert(ts, campaign or self.campaign, click_id, user, self.label)
