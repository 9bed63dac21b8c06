"""Synthetic click logs with labels: honest referral trees, their look-alikes, and attacks.

``simulate(out, scale=..., seed=...)`` writes four files into ``out``; the same seed and scale
give byte-identical files (all randomness comes from seeded ``random.Random`` streams; no wall
clock, no global state, no iteration over unordered sets).

Scale: ``scale`` honest seed sharers (people who joined the campaign directly) in the main
campaign ``milk-tea`` and ``scale // 4`` (at least 1) in the second, ``spring-coffee``; networks
(NAT pools, broadband /24s, venues) and the number of attack operations grow in proportion, so the
whole population scales linearly: about 130 events per unit of scale (scale 200: 25-40k events;
scale 1000: 120-140k; scale 7,500: ~1M), 12-18% of them fraudulent. Reach is heavy-tailed, so
runs differ more between seeds than a Poisson process would. Below 200 attacks are
over-represented (every kind runs at least once).

Time: ``milk-tea`` runs six days from 2026-02-13 10:00-13:00 Asia/Shanghai (the minute depends on
the seed), ``spring-coffee`` five days from 2026-02-15 12:00-14:00. Both contain Spring Festival
eve (2026-02-16), whose evening (20:00-23:00) brings 15-20x the traffic of an average hour of
the ordinary days.

Files
-----

``clicks.jsonl``: click log v1, one JSON object per line, sorted by ``ts`` (epoch seconds, 3
decimals), clicks and conversions interleaved::

    {"type": "click", "id": "c1", "ts": 1770952000.125, "campaign": "milk-tea",
     "referrer": "u42", "ip": "117.136.8.41", "ua": "Mozilla/5.0 (iPhone; ...) MicroMessenger/...",
     "headers": {"accept-language": "zh-CN,zh-Hans;q=0.9", "referer": "", "sec-fetch-site": "none"},
     "visitor_id": "Yc2Zq9dJ1bO0b3Yb1mQk0w"}
    {"type": "conversion", "id": "x1", "ts": 1770952031.5, "campaign": "milk-tea",
     "click_id": "c1", "user": "u77"}

``referrer`` is the sharer's user id; ``headers`` always has ``accept-language`` and ``referer``
(possibly empty) and, when the simulated client sends them, ``sec-ch-ua``, ``sec-ch-ua-mobile``,
``sec-ch-ua-platform``, ``sec-fetch-site`` and ``x-requested-with``; ``visitor_id`` is the visitor
cookie the client presented or was given and kept (22 URL-safe characters), null when the client
keeps no cookies (many in-app webviews, scripts). A conversion says the visitor of ``click_id`` (an
earlier click of the same campaign) signed up as ``user``, who becomes a participant, a child of
that click's referrer, and may share; a user converts at most once per campaign (an existing user
may join a second campaign). Every click's referrer is a seed sharer of the campaign or converted
in it earlier.

``labels.jsonl``: one object per event, in the same order::

    {"id": "c1", "type": "click", "fraud": false, "kind": "organic", "actor": "p913",
     "variant": "household"}

``kind`` is ``organic`` or one of ``click_farm``, ``datacenter_bot``, ``self_referral``,
``sybil_chain``, ``click_spam``, ``scraped_link``, ``ring``, ``star_burst``; ``actor`` is the
person (``p<n>``: honest people and self-referrers) or the attack operation (``<kind>-<n>``);
``variant`` names the attack's variant, or for organic events the honest look-alike involved
(``household``, ``shared_device``, ``viral``, ``reopen``, ``repeat``, ``returning``,
``own_link``, ``vpn``, ``venue``; empty otherwise).

``referrers.jsonl``: one object per campaign and sharer whose link was clicked::

    {"campaign": "milk-tea", "referrer": "u42", "fraud": false, "kind": "organic",
     "seed": true, "joined": null, "clicks": 17}

A referrer is fraudulent when they run or knowingly benefit from an attack (``kind`` says which);
victims (scraped links, sabotage spam) are not. ``joined`` is the conversion time (null for seeds).

``summary.json``: seed, scale, event counts in total, per kind and per campaign, referrer counts,
the time span, and the festival peak of the main campaign: the busiest three hours of the crowd
(honest clicks other than influencers' audiences), their clicks per hour, the baseline (clicks per
hour on ordinary days, after the first day) and the ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from random import Random
from typing import Any

from gateway.simulate import attacks
from gateway.simulate.clock import FESTIVAL_DAYS, HOUR, Calendar, at_local, iso
from gateway.simulate.honest import Honest
from gateway.simulate.networks import AddressPlan
from gateway.simulate.output import OUTPUTS, Sink
from gateway.simulate.people import People
from gateway.simulate.world import KINDS, Campaign, World

FORMAT = "refgate click log v1"
MAIN, SECOND = "milk-tea", "spring-coffee"
#: Share of seed sharers who are viral (influencers, big group owners); one from 100 seeds.
VIRAL_SEEDS = 0.005
#: Seed sharers who refer themselves.
SELF_REFERRING_SEEDS = 0.012
#: Chance that a seed of the second campaign is an existing participant.
SECOND_CAMPAIGN_REUSE = 0.4
#: The festival peak is measured over this many consecutive hours.
PEAK_HOURS = 3

__all__ = ["FORMAT", "OUTPUTS", "simulate"]


def _campaigns(seed: int, scale: int) -> list[Campaign]:
    rng = Random(f"{seed}:calendar")
    start = at_local(2026, 2, 13, 10) + rng.randint(0, 180) * 60.0
    second = at_local(2026, 2, 15, 12) + rng.randint(0, 120) * 60.0
    return [
        Campaign(0, MAIN, start, start + 6 * 24 * HOUR, scale),
        Campaign(1, SECOND, second, second + 5 * 24 * HOUR, max(1, scale // 4)),
    ]


def simulate(
    out: Path, *, scale: int, seed: int, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Write the four files into the existing directory ``out``; returns the summary."""
    if scale < 1:
        raise ValueError("scale must be at least 1")
    campaigns = _campaigns(seed, scale)
    origin = campaigns[0].start - campaigns[0].start % HOUR
    hours = int((max(c.end for c in campaigns) - origin) // HOUR) + 48
    calendar = Calendar(origin, hours)
    plan = AddressPlan(Random(f"{seed}:network"), scale)
    sink = Sink(out)
    try:
        world = World(sink, origin, hours)
        if progress is not None:
            last = max(c.end for c in campaigns)
            progress(f"scale {scale}, seed {seed}: simulating {iso(origin)} to {iso(last)}")
            world.progress = _reporter(progress)
        rng = Random(f"{seed}:honest")
        people = People(rng, plan, calendar)
        honest = Honest(world, rng, people, calendar)
        ctx = attacks.Context(seed, world, honest, people, plan, calendar, campaigns)
        attacks.plan(ctx, scale)
        for campaign in campaigns:
            viral = round(VIRAL_SEEDS * campaign.seeds) if campaign.seeds >= 100 else 0
            if campaign.index == 0:
                viral = max(1, viral)
            honest.plan_seeds(
                campaign,
                viral=viral,
                self_referrers=max(1, round(SELF_REFERRING_SEEDS * campaign.seeds)),
                reuse=SECOND_CAMPAIGN_REUSE if campaign.index else 0.0,
            )
        world.run()
        summary = _summary(world, campaigns, seed, scale)
        referrers = [
            {
                "campaign": r.campaign,
                "referrer": r.user,
                "fraud": r.fraud,
                "kind": r.kind,
                "seed": r.seed,
                "joined": None if r.joined is None else round(r.joined, 3),
                "clicks": r.clicks,
            }
            for r in world.referrers.values()
            if r.clicks
        ]
        sink.finish(referrers, summary)
        if progress is not None:
            progress(f"done: {summary['events']:,} events")
    except BaseException:
        sink.abort()
        raise
    return summary


def _reporter(progress: Callable[[str], None]) -> Callable[[float, int], None]:
    last = [time.monotonic()]

    def report(ts: float, events: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 2.0:
            last[0] = now
            progress(f"simulated up to {iso(ts)}: {events:,} events")

    return report


def festival_peak(hourly: list[int], origin: float, campaign: Campaign) -> dict[str, Any]:
    """The busiest three consecutive hours of the crowd's clicks against the baseline: the mean
    clicks per hour of the campaign's ordinary days (not the festival eve or New Year's Day, not
    the first 24 hours, while the first referral trees are still growing)."""
    first = int(-(-(campaign.start - origin) // HOUR))
    last = int((campaign.end - origin) // HOUR)
    start = max(range(first, last - PEAK_HOURS + 1), key=lambda h: sum(hourly[h : h + PEAK_HOURS]))
    per_hour = sum(hourly[start : start + PEAK_HOURS]) / PEAK_HOURS
    ordinary = [
        hourly[h]
        for h in range(first + 24, last)
        if Calendar.local_day(origin + h * HOUR) not in FESTIVAL_DAYS
    ]
    baseline = statistics.fmean(ordinary) if ordinary else 0.0
    return {
        "from_local": iso(origin + start * HOUR),
        "hours": PEAK_HOURS,
        "clicks_per_hour": round(per_hour, 2),
        "baseline_clicks_per_hour": round(baseline, 2),
        "ratio": round(per_hour / baseline, 2) if baseline else None,
    }


def _summary(world: World, campaigns: list[Campaign], seed: int, scale: int) -> dict[str, Any]:
    peak = festival_peak(world.hourly, world.origin, campaigns[0])
    referrers = [r for r in world.referrers.values() if r.clicks]
    fraud_clicks = sum(world.kind_counts[k][0] for k in KINDS[1:])
    fraud_conversions = sum(world.kind_counts[k][1] for k in KINDS[1:])
    first = world.first_ts if world.first_ts is not None else world.origin
    return {
        "format": FORMAT,
        "seed": seed,
        "scale": scale,
        "events": world.clicks + world.conversions,
        "clicks": world.clicks,
        "conversions": world.conversions,
        "users": world.users,
        "fraud": {
            "clicks": fraud_clicks,
            "conversions": fraud_conversions,
            "share_of_events": round(
                (fraud_clicks + fraud_conversions) / max(1, world.clicks + world.conversions), 4
            ),
        },
        "kinds": {
            kind: {"clicks": clicks, "conversions": conversions}
            for kind, (clicks, conversions) in world.kind_counts.items()
        },
        "referrers": {
            "total": len(referrers),
            "fraud": sum(r.fraud for r in referrers),
            "kinds": {kind: sum(r.kind == kind for r in referrers) for kind in KINDS},
        },
        "campaigns": [
            {
                "slug": c.slug,
                "start": c.start,
                "end": c.end,
                "start_local": iso(c.start),
                "end_local": iso(c.end),
                "seed_sharers": c.seeds,
                "clicks": c.clicks,
                "conversions": c.conversions,
                "fraud_clicks": c.fraud_clicks,
                "fraud_conversions": c.fraud_conversions,
                "referrers": sum(r.campaign == c.slug for r in referrers),
            }
            for c in campaigns
        ],
        "span": {
            "first": round(first, 3),
            "last": round(world.last_ts, 3),
            "first_local": iso(first),
            "last_local": iso(world.last_ts),
        },
        "peak": peak,
    }
