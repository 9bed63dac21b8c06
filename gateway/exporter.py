"""Exporting recorded traffic as click log v1, for backtesting new rules or models.

The raw IP was never stored: exported clicks carry its salted hash, prefix and network class,
which replay accepts in its place. Clicks and conversions are merged in time order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import IO, Any

import orjson

from gateway.campaigns import Campaign
from gateway.referrer_names import ReferrerNames
from gateway.store import keys
from gateway.store.follow import STREAM_BATCH

BATCH = STREAM_BATCH


def _clicks(store: Any, campaign: Campaign, since: float) -> Iterator[tuple[float, dict[str, Any]]]:
    ck = keys.campaign_keys(campaign.id)
    names = ReferrerNames(store, campaign.id)
    start = f"{int(since * 1000)}-0" if since else "-"
    while True:
        entries = store.xrange(ck.events, min=start, max="+", count=BATCH)
        for event, referrer in names.events(entries):
            if event["ts"] < since or event["outcome"] == "preview":
                continue
            line = {
                "type": "click",
                "id": event["id"],
                "ts": event["ts"],
                "campaign": campaign.slug,
                "referrer": referrer,
                "ip_hash": event["ip_hash"],
                "prefix": event["prefix"],
                "network": event.get("network", ""),
                "ua": event["ua"],
                "headers": {
                    "accept-language": event["accept_language"],
                    "referer": event["referer"],
                },
                "visitor_id": event["visitor_id"],
            }
            yield event["ts"], line
        if len(entries) < BATCH:
            return
        last = entries[-1][0].decode()
        start = f"({last}"


def _conversions(
    store: Any, campaign: Campaign, since: float
) -> Iterator[tuple[float, dict[str, Any]]]:
    ck = keys.campaign_keys(campaign.id)
    for entry_id, fields in store.xrange(ck.conversions):
        if fields.get(b"status") != b"accepted":
            continue
        ts = float(fields[b"ts"])
        if ts < since:
            continue
        yield (
            ts,
            {
                "type": "conversion",
                "id": f"x-{entry_id.decode()}",
                "ts": ts,
                "campaign": campaign.slug,
                "click_id": fields[b"click"].decode(),
                "user": fields[b"user"].decode(),
            },
        )


def export_campaign(store: Any, campaign: Campaign, since: float, out: IO[bytes]) -> int:
    written = 0
    merged = heapq.merge(
        _clicks(store, campaign, since),
        _conversions(store, campaign, since),
        key=lambda item: item[0],
    )
    for _, line in merged:
        out.write(orjson.dumps(line) + b"\n")
        written += 1
    return written
