"""Noticing when a platform starts blocking a campaign's links, without acting on it.

When WeChat (say) blocks a campaign's links, people inside WeChat stop reaching refgate at all:
the platform's share of the campaign's clicks collapses while other platforms carry on. This job
compares each platform's share over the last two hours with its share over the day before and
raises a "possible block" alert for staff. It never changes a platform's status itself: staff
confirm with ``PUT /campaigns/<slug>/platforms/<platform>`` (which also clears the alert).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from gateway.campaigns import Campaign, CampaignService
from gateway.store import keys

RECENT_HOURS = 2
BASELINE_HOURS = 24
#: A platform must have had at least this share and this many clicks to be watched.
MIN_BASELINE_SHARE = 0.05
MIN_BASELINE_CLICKS = 50
#: Alert when the recent share falls below this fraction of the baseline share...
COLLAPSE_RATIO = 0.3
#: ...while the other platforms' hourly rate stays above this fraction of theirs.
OTHERS_HOLD_RATIO = 0.5
#: An open alert is withdrawn once the share is back above this fraction of the baseline.
RECOVERED_RATIO = 0.6


@dataclass(frozen=True)
class BlockAlert:
    campaign: str
    platform: str
    raised_at: float
    baseline_share: float
    recent_share: float
    baseline_clicks: int
    recent_clicks: int
    status: str = "open"

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def open_alerts(store: Any, campaign: Campaign) -> dict[str, dict[str, Any]]:
    raw = store.hgetall(keys.campaign_keys(campaign.id).alerts)
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def clear_alert(store: Any, campaign: Campaign, platform: str) -> None:
    store.hdel(keys.campaign_keys(campaign.id).alerts, platform)


def watch(
    store: Any, campaigns: CampaignService, platforms: Iterable[str], now: float
) -> list[BlockAlert]:
    """Check every live campaign; returns the alerts raised in this run."""
    platform_keys = tuple(platforms)
    raised: list[BlockAlert] = []
    for campaign in campaigns.list():
        if campaign.state_at(now) == "live":
            raised += _watch_campaign(store, campaign, platform_keys, now)
    return raised


def _watch_campaign(
    store: Any, campaign: Campaign, platforms: tuple[str, ...], now: float
) -> list[BlockAlert]:
    ck = keys.campaign_keys(campaign.id)
    hour = int(now) // 3600
    recent = range(hour - RECENT_HOURS + 1, hour + 1)
    baseline = range(hour - RECENT_HOURS - BASELINE_HOURS + 1, hour - RECENT_HOURS + 1)
    counters = ["clicks", *(f"platform:{p}" for p in platforms)]
    fields = [f"{h}|{c}" for h in (*baseline, *recent) for c in counters]
    values = [int(v or 0) for v in store.hmget(ck.timeline, fields)]
    table = dict(zip(fields, values, strict=True))

    def total(hours: range, counter: str) -> int:
        return sum(table[f"{h}|{counter}"] for h in hours)

    base_all, recent_all = total(baseline, "clicks"), total(recent, "clicks")
    if base_all == 0:
        return []
    existing = open_alerts(store, campaign)
    raised = []
    for platform in platforms:
        base_p, recent_p = (
            total(baseline, f"platform:{platform}"),
            total(recent, f"platform:{platform}"),
        )
        base_share = base_p / base_all
        recent_share = recent_p / recent_all if recent_all else 0.0
        if platform in existing and recent_share >= RECOVERED_RATIO * base_share:
            clear_alert(store, campaign, platform)
            continue
        if platform in existing or campaign.blocked_on(platform):
            continue
        if base_share < MIN_BASELINE_SHARE or base_p < MIN_BASELINE_CLICKS:
            continue
        others_base_rate = (base_all - base_p) / len(baseline)
        others_recent_rate = (recent_all - recent_p) / len(recent)
        if others_recent_rate < OTHERS_HOLD_RATIO * others_base_rate:
            continue  # everything fell: a quiet hour or an outage, not a platform block
        if recent_share < COLLAPSE_RATIO * base_share:
            alert = BlockAlert(
                campaign=campaign.slug,
                platform=platform,
                raised_at=now,
                baseline_share=round(base_share, 4),
                recent_share=round(recent_share, 4),
                baseline_clicks=base_p,
                recent_clicks=recent_p,
            )
            store.hset(ck.alerts, platform, alert.to_json())
            raised.append(alert)
    return raised
