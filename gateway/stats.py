"""Campaign statistics from the counters the click path maintains."""

from __future__ import annotations

from typing import Any

from gateway.campaigns import Campaign
from gateway.store import keys

#: Counter name prefixes ("decision:allow") and the stats section that groups them.
GROUPS = {
    "decision": "decisions",
    "outcome": "outcomes",
    "platform": "platforms",
    "fallback": "fallback_views",
}


def counter_values(raw: dict[bytes, bytes]) -> dict[str, int]:
    """The integer fields of a counters hash; anything else (a marker, a cursor an earlier
    version kept there) is not a count and is left out rather than failing the page."""
    return {k.decode(): int(v) for k, v in raw.items() if v.lstrip(b"-").isdigit()}


def campaign_stats(store: Any, campaign: Campaign) -> dict[str, Any]:
    ck = keys.campaign_keys(campaign.id)
    # Two calls, not a pipeline: redis-py refuses PFCOUNT in cluster pipelines.
    raw = store.hgetall(ck.counters)
    visitors = store.pfcount(ck.visitors)
    counters = counter_values(raw)
    grouped: dict[str, dict[str, int]] = {section: {} for section in GROUPS.values()}
    for name, value in counters.items():
        group, _, member = name.partition(":")
        section = GROUPS.get(group)
        if section and member:
            grouped[section][member] = value
    return {
        "campaign": campaign.slug,
        "clicks": counters.get("clicks", 0),
        "link_clicks": counters.get("clicks:link", 0),
        "scan_clicks": counters.get("clicks:scan", 0),
        "unscored_clicks": counters.get("clicks:unscored", 0),
        "unique_visitors": int(visitors),
        "referrers": counters.get("referrer_seq", 0),
        **grouped,
    }
