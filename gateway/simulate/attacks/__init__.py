"""Attacks: how many operations of each kind run, in which campaign.

Operations per 1,000 units of scale (at least one of each kind in every run, so small runs are
fraud-heavy): click farms 4, datacenter/proxy bots 3.5, click spam 4, scraped links 2.5, sybil
chains 3, rings 2.5, star bursts 3; three in four run in the main campaign. Self-referral is a
choice made by individual sharers (about 1.2% of seed sharers, 0.4% of participants who share)
and is started from the honest model.
"""

from __future__ import annotations

from itertools import count
from random import Random

from gateway.simulate.attacks.bots import DatacenterBot
from gateway.simulate.attacks.common import Context, Operation
from gateway.simulate.attacks.farm import ClickFarm
from gateway.simulate.attacks.ring import Ring
from gateway.simulate.attacks.scraped import ScrapedLink
from gateway.simulate.attacks.selfref import SelfReferral
from gateway.simulate.attacks.spam import ClickSpam
from gateway.simulate.attacks.star import StarBurst
from gateway.simulate.attacks.sybil import SybilChain
from gateway.simulate.world import Sharer

OPERATIONS: tuple[tuple[type[Operation], float], ...] = (
    (ClickFarm, 4.0),
    (DatacenterBot, 3.5),
    (ClickSpam, 4.0),
    (ScrapedLink, 2.5),
    (SybilChain, 3.0),
    (Ring, 2.5),
    (StarBurst, 3.0),
)

__all__ = ["OPERATIONS", "Context", "plan"]


def plan(ctx: Context, scale: int) -> None:
    main, *others = ctx.campaigns
    for operation, rate in OPERATIONS:
        for index in range(1, max(1, round(scale * rate / 1000.0)) + 1):
            chooser = Random(f"{ctx.seed}:plan:{operation.kind}:{index}")
            campaign = main if index == 1 or not others or chooser.random() < 0.75 else others[0]
            operation(ctx, campaign, index)
    numbers = count(1)

    def self_referral(sharer: Sharer, ts: float) -> None:
        SelfReferral(ctx, sharer, next(numbers), ts)

    ctx.honest.on_self_referral = self_referral
