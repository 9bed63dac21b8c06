"""KEYS and ARGV of ``click.lua`` calls, and its reply read back as the click's History.

One function builds every call, so the click path, the recorder's flush and the spool drain
speak to the script the same way (the layout is documented at the top of the script).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

from detectors.base import ClickInput, History
from gateway.events import ClickEvent
from gateway.referrer_risk import parse_risk
from gateway.store import keys

Arg = str | bytes | int

#: The latest click times of a link the timing detector reads (click.lua keeps at least these).
RECENT_TIMES = 8


def click_call(
    campaign_id: int,
    current: ClickInput | None,
    events: Sequence[ClickEvent],
    ttl: int,
    minid: str,
) -> tuple[list[str], list[Arg]]:
    ck = keys.campaign_keys(campaign_id)
    call_keys = [ck.config, ck.referrer_generation, ck.events, ck.counters, ck.visitors]
    call_keys.append(ck.timeline)
    args: list[Arg]
    if current is None:
        args = [""]
    else:
        call_keys += history_keys(ck, current)
        args = [
            current.referrer_id,
            current.visitor_id or "",
            "0" if current.new_visitor else "1",
            device_key(current.ip_hash, current.ua),
            current.prefix,
            repr(current.ts),
            str(int(current.ts) % 3600 // 60),
            int(current.ts) // 3600,
            current.ip_hash,
        ]
    if events:
        # Only with events: a click carries none most of the time (the recorder waits for a
        # batch), and each argument costs the server about a thousand instructions to pass.
        args += [ttl, minid]
        for event in events:
            call_keys.append(ck.click(event.id))
            args += [
                event.to_json(),
                event.record_json(),
                event.visitor_id or "",
                f"{int(event.ts) // 3600}|{','.join(event.counter_fields())}",
            ]
    return call_keys, args


def history_keys(ck: keys.CampaignKeys, click: ClickInput) -> list[str]:
    """The history keys of a click (click.lua's KEYS[7..11]), built in one go: this runs on
    every click."""
    ts = int(click.ts)
    hour = ts // 3600
    h = ck.history_prefix
    return [
        f"{h}h{hour}",
        f"{h}h{hour - 1}",
        f"{h}rn:{click.referrer_id}:d{ts // 86400}",
        ck.sharer_own(click.referrer_id),
        ck.referrer_risk,
    ]


@lru_cache(maxsize=16384)
def agent_hash(ua: str) -> str:
    return hashlib.blake2b(ua.encode(), digest_size=6).hexdigest()


#: Marks of user agents that tell one phone from another: the Android build's model
#: (``; 23127PN0CC Build/``) and WeChat's per-install web id on Android (``MMWEBID/``).
_DISTINCT_AGENT_MARKS = ("Build/", "MMWEBID/")


def device_key(ip_hash: str, ua: str) -> str:
    """The same phone (browser) behind the same address: a device, cookies or not.

    Empty when the agent names no device: every iPhone on one iOS and WeChat version sends the
    same string, so a family's two iPhones on their home Wi-Fi would look like one device (and
    an honest invitation like self-referral). Those are told apart by visitor id alone.
    """
    if not ip_hash or not any(mark in ua for mark in _DISTINCT_AGENT_MARKS):
        return ""
    return f"{ip_hash}|{agent_hash(ua)}"


def ip_visitors(ck: keys.CampaignKeys, ip_hash: str, hour: int) -> tuple[str, str]:
    """Where click.lua keeps the distinct visitors behind an IP in an hour: the history hash
    and its field (read the count with :func:`visitors_behind`)."""
    return ck.click_history(hour), f"i:{ip_hash}"


def visitors_behind(value: bytes | None) -> int:
    """The distinct visitors count of an ``i:`` field of the history hash (0 when absent):
    the u32 after the field's 7 bytes of counts (click.lua)."""
    return int.from_bytes(value[7:11], "big") if value else 0


def parse_history(reply: Sequence[object]) -> History:
    """The history part of a ``click.lua`` reply (after version, generation, recorded)."""
    n = list(map(int, reply[3:19]))  # type: ignore[arg-type]
    review, review_score, review_source = parse_risk(reply[19])  # type: ignore[arg-type]
    times = tuple(map(float, reply[20].split(b",")[:RECENT_TIMES]))  # type: ignore[attr-defined]
    return History(
        available=True,
        visitor_1m=n[0],
        visitor_1h=n[1],
        ip_1m=n[2],
        ip_1h=n[3],
        prefix_1m=n[4],
        prefix_1h=n[5],
        ip_visitors_1h=n[6],
        referrer_1m=n[7],
        referrer_1h=n[8],
        referrer_networks_1h=n[9],
        referrer_networks_24h=n[10],
        self_visitor=bool(n[11]),
        self_device=bool(n[12]),
        self_prefix=bool(n[13]),
        referrer_prev_1h=n[14],
        campaign_1h=n[15],
        recent_times=times,
        referrer_review=review,
        referrer_review_score=review_score,
        referrer_review_source=review_source,
    )
