"""The click history click.lua keeps and returns, on every store: the windows the detectors read.

Each click is one script call (click_call -> ClickStore.call -> parse_history), at times chosen
around minute and hour boundaries, so a counter that forgets its window, or counts a window it
should not, changes a figure asserted here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from detectors.base import ClickInput, History
from gateway.clickcall import click_call, history_keys, parse_history
from gateway.events import ClickEvent
from gateway.services import Services
from gateway.store import keys
from tests.events import click_event

CAMPAIGN = 7
REFERRER = 42
#: 2026-02-08 12:30:00 UTC: minute 30 of its hour.
HALF_PAST = 1_770_553_800


def click(ts: float, **changes: object) -> ClickInput:
    base = ClickInput(
        ts=ts,
        campaign_id=CAMPAIGN,
        referrer_id=REFERRER,
        ip_hash="a1" * 10,
        prefix="203.0.113.0/24",
        ua="Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1",
        visitor_id="visitor-one-aaaaaaaaaa",
        new_visitor=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def history(services: Services, current: ClickInput) -> History:
    call_keys, args = click_call(current.campaign_id, current, [], 3600, "0-0")
    return parse_history(services.click_store.call(call_keys, args))


def test_minute_and_hour_windows_count_each_subject_apart(services: Services) -> None:
    first = history(services, click(HALF_PAST))
    assert (first.visitor_1m, first.visitor_1h, first.ip_1m, first.ip_1h) == (1, 1, 1, 1)
    assert (first.prefix_1m, first.prefix_1h, first.referrer_1m, first.referrer_1h) == (1, 1, 1, 1)
    assert (first.ip_visitors_1h, first.referrer_networks_1h, first.referrer_networks_24h) == (
        1,
        1,
        1,
    )
    assert first.referrer_prev_1h == 0 and first.recent_times == (float(HALF_PAST),)

    # The same person 10 s later, same minute.
    again = history(services, click(HALF_PAST + 10))
    assert (again.visitor_1m, again.visitor_1h, again.ip_1m, again.ip_1h) == (2, 2, 2, 2)
    assert (again.referrer_1m, again.referrer_1h, again.ip_visitors_1h) == (2, 2, 1)
    # A prefix seen this hour: today's distinct prefixes come from the hour's hash.
    assert (again.referrer_networks_1h, again.referrer_networks_24h) == (1, 1)

    # A new browser (no cookie) behind the same address, the next minute: its visitor id has no
    # history to count; the address, its prefix and the link count on, per minute and per hour.
    other = history(
        services, click(HALF_PAST + 70, visitor_id="visitor-two-bbbbbbbbbb", new_visitor=True)
    )
    assert (other.visitor_1m, other.visitor_1h) == (0, 0)
    assert (other.ip_1m, other.ip_1h, other.prefix_1m, other.prefix_1h) == (1, 3, 1, 3)
    assert (other.referrer_1m, other.referrer_1h, other.ip_visitors_1h) == (1, 3, 2)
    assert other.recent_times == (HALF_PAST + 70.0, HALF_PAST + 10.0, float(HALF_PAST))

    # Another network, minute 59 of the same hour: a subject of its own; the link's networks grow.
    elsewhere = history(
        services,
        click(HALF_PAST + 29 * 60 + 30, ip_hash="b2" * 10, prefix="198.51.100.0/24"),
    )
    assert (elsewhere.ip_1m, elsewhere.ip_1h, elsewhere.prefix_1m, elsewhere.prefix_1h) == (
        1,
        1,
        1,
        1,
    )
    assert (elsewhere.visitor_1m, elsewhere.visitor_1h) == (1, 3)
    assert (elsewhere.referrer_networks_1h, elsewhere.referrer_networks_24h) == (2, 2)
    assert elsewhere.referrer_1h == 4
    # Back on the first network: both known, still two.
    back = history(services, click(HALF_PAST + 29 * 60 + 40))
    assert (back.referrer_networks_1h, back.referrer_networks_24h) == (2, 2)

    # The next hour: every hourly window starts again, and the hour before is remembered.
    next_hour = history(services, click(HALF_PAST + 45 * 60))
    assert (next_hour.visitor_1h, next_hour.ip_1h, next_hour.referrer_1h) == (1, 1, 1)
    assert (next_hour.referrer_networks_1h, next_hour.referrer_networks_24h) == (1, 2)
    assert next_hour.referrer_prev_1h == 5


def test_history_keys_expire_after_their_window(services: Services) -> None:
    current = click(HALF_PAST)
    history(services, current)
    history(services, click(HALF_PAST + 1))
    hour_hash, _, networks_today, *_ = history_keys(keys.campaign_keys(CAMPAIGN), current)
    store = services.store.main
    assert 3600 < store.ttl(hour_hash) <= 7200  # read as "the hour before" all the next hour
    assert 7200 < store.ttl(networks_today) <= 172800


def test_the_hour_hash_keeps_its_ttl_from_the_first_click_of_each_referrer(
    services: Services,
) -> None:
    """The hour's hash gets its TTL when a referrer first clicks in the hour, not on every
    click: a referrer's later clicks leave it alone, another referrer's first click renews it."""
    hour_hash = history_keys(keys.campaign_keys(CAMPAIGN), click(HALF_PAST))[0]
    store = services.store.main
    history(services, click(HALF_PAST))
    store.expire(hour_hash, 5000)
    history(services, click(HALF_PAST + 1))
    assert 4990 < store.ttl(hour_hash) <= 5000
    history(services, click(HALF_PAST + 2, referrer_id=REFERRER + 1))
    assert store.ttl(hour_hash) > 7100


def test_the_latest_times_keep_at_least_eight_across_the_hour(services: Services) -> None:
    """The timing detector reads a link's 8 latest clicks; they carry over into the next hour,
    and a long run of clicks keeps the newest."""
    start = HALF_PAST + 28 * 60  # 12:58
    stamps = [start + n * 3.25 for n in range(40)]  # the last 3 in the next hour
    for stamp in stamps:
        seen = history(services, click(stamp, new_visitor=True))
    assert seen.recent_times == tuple(reversed(stamps))[:8]
    in_next_hour = [stamp for stamp in stamps if int(stamp) // 3600 > HALF_PAST // 3600]
    assert len(in_next_hour) == 3
    # Kept short: the field holds some more than 8 (up to 200 characters), not all 40.
    kept = services.store.main.hget(
        history_keys(keys.campaign_keys(CAMPAIGN), click(stamps[-1]))[0], f"t:{REFERRER}"
    )
    assert 8 <= len(kept.split(b",")) <= 16


def test_a_minute_counter_saturates_instead_of_wrapping(services: Services) -> None:
    """Minute counts are 16 bits: a flood past 65,535 clicks a minute must stay at the top
    (still over every limit), never wrap to a small count that looks calm."""
    current = click(HALF_PAST, new_visitor=True)
    hour_hash = history_keys(keys.campaign_keys(CAMPAIGN), current)[0]
    store = services.store.main
    # The prefix counted 70,000 times this hour, 65,534 of them in minute 30.
    store.hset(
        hour_hash,
        f"p:{current.prefix}",
        (70_000).to_bytes(4, "big") + bytes([30]) + (65_534).to_bytes(2, "big"),
    )
    store.expire(hour_hash, 7200)
    saturated = history(services, current)
    assert (saturated.prefix_1m, saturated.prefix_1h) == (65_535, 70_001)
    assert history(services, current).prefix_1m == 65_535
    # The next minute counts from 1 again, the hour on.
    later = history(services, click(HALF_PAST + 60, new_visitor=True))
    assert (later.prefix_1m, later.prefix_1h) == (1, 70_003)


def test_a_batch_counts_each_event_in_its_own_hour_and_fields_once(services: Services) -> None:
    """click.lua sums a batch's counters before writing them: events of two hours and outcomes
    interleaved, and a batch redelivered (the spool drain after an outage) counts nothing."""

    def event(number: int, hour: int, outcome: str) -> ClickEvent:
        return click_event(
            CAMPAIGN,
            number,
            ts=hour * 3600 + 5.0,
            referrer_id=REFERRER,
            scan=number % 3 == 0,
            outcome=outcome,
            platform="wechat" if outcome == "fallback" else "browser",
        )

    hour = HALF_PAST // 3600
    batch = [event(n, hour + n % 2, "fallback" if n % 4 == 1 else "redirect") for n in range(12)]
    assert services.recorder.write(batch) == 12
    assert services.recorder.write(batch) == 0  # redelivered: recorded and counted once
    ck = keys.campaign_keys(CAMPAIGN)
    counters = {k.decode(): int(v) for k, v in services.store.main.hgetall(ck.counters).items()}
    assert counters["clicks"] == 12 and counters["outcome:redirect"] == 9
    assert counters["outcome:fallback"] == 3 and counters["fallback:wechat"] == 3
    assert counters["clicks:scan"] == 4 and counters["clicks:link"] == 8
    timeline = {k.decode(): int(v) for k, v in services.store.main.hgetall(ck.timeline).items()}
    assert timeline[f"{hour}|clicks"] == 6 and timeline[f"{hour + 1}|clicks"] == 6
    assert (
        timeline[f"{hour + 1}|outcome:fallback"] == 3 and f"{hour}|outcome:fallback" not in timeline
    )


def test_a_batch_of_one_kind_counts_each_event(services: Services) -> None:
    """The usual call carries events of one hour and one set of fields (one group), written
    without summing tables: one event adds one to each field, three alike add three."""

    def event(number: int) -> ClickEvent:
        return click_event(CAMPAIGN, number, ts=HALF_PAST + number, referrer_id=REFERRER)

    hour = HALF_PAST // 3600
    ck = keys.campaign_keys(CAMPAIGN)
    store = services.store.main
    assert services.recorder.write([event(1)]) == 1
    assert services.recorder.write([event(2), event(3), event(4)]) == 3
    assert services.recorder.write([event(3), event(5)]) == 1  # event 3 again counts nothing
    counters = {k.decode(): int(v) for k, v in store.hgetall(ck.counters).items()}
    assert counters["clicks"] == 5 and counters["outcome:redirect"] == 5
    assert counters["clicks:link"] == 5 and "clicks:scan" not in counters
    timeline = {k.decode(): int(v) for k, v in store.hgetall(ck.timeline).items()}
    assert timeline[f"{hour}|clicks"] == 5 and timeline[f"{hour}|outcome:redirect"] == 5


ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC Build/UKQ1.230804.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36"
)


def test_a_sharer_on_their_own_link_is_known_by_browser_phone_and_network(
    services: Services, campaign: dict[str, Any]
) -> None:
    """What a participant's join leaves behind (convert.lua) is what a click on their own link
    is checked against (click.lua): their browser, their phone and their network."""
    from tests.test_conversions import record_click

    own = {"visitor": "bob-browser-aaaaaaaaaa", "ip_hash": "b0" * 10, "prefix": "198.51.100.0/24"}
    joined = record_click(services, campaign, "alice", ua=ANDROID, **own)
    services.conversions.convert(joined, "bob")
    found = services.campaigns.require(campaign["slug"])
    bob = services.codec.decode(services.links.mint(found, "bob").token).referrer_id
    mine = click(
        HALF_PAST,
        campaign_id=campaign["id"],
        referrer_id=bob,
        visitor_id=own["visitor"],
        ip_hash=own["ip_hash"],
        prefix=own["prefix"],
        ua=ANDROID,
    )
    seen = history(services, mine)
    assert (seen.self_visitor, seen.self_device, seen.self_prefix) == (True, True, True)
    # The same phone with its cookie gone, on the same Wi-Fi.
    seen = history(services, dataclasses.replace(mine, visitor_id="fresh-browser-bbbbbbbbb"))
    assert (seen.self_visitor, seen.self_device, seen.self_prefix) == (False, True, True)
    # Someone else entirely.
    stranger = dataclasses.replace(
        mine, visitor_id="stranger-cccccccccccc", ip_hash="c3" * 10, prefix="192.0.2.0/24"
    )
    seen = history(services, stranger)
    assert (seen.self_visitor, seen.self_device, seen.self_prefix) == (False, False, False)
