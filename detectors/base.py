"""The one interface every detector implements, and the data it reads."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class ClickInput:
    """One click as the detectors see it: no raw IP, only its salted hash and network prefix."""

    ts: float
    campaign_id: int
    referrer_id: int
    ip_hash: str
    prefix: str
    ua: str
    accept_language: str = ""
    referer: str = ""
    visitor_id: str | None = None
    new_visitor: bool = True
    scan: bool = False
    #: "datacenter", "vpn" or "" (eyeball network or unknown), looked up before the IP is dropped.
    network: str = ""
    #: Lower-cased request headers the detectors may read (client hints, sec-fetch-*).
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The client platform key (gateway.platforms), e.g. "wechat", "browser".
    platform: str = "unknown"
    #: Whether the platform is an in-app browser (cookies there are often not kept).
    in_app: bool = False
    #: The client OS family from the user agent ("ios", "android", "windows", ...).
    os: str = "other"


@dataclass(slots=True)
class History:
    """What the store knew about this click's neighbourhood, read in the click's one round trip.

    Counts include the click itself. Windows are fixed buckets (the current minute, the current
    hour), which is what a single round trip can afford; detectors allow for the edge effects.
    """

    available: bool = True
    #: Clicks in this campaign by the same visitor (0 when the visitor is new: nothing to count).
    visitor_1m: int = 0
    visitor_1h: int = 0
    #: Clicks in this campaign from the same IP (hash) and the same /24 (/48) prefix.
    ip_1m: int = 0
    ip_1h: int = 0
    prefix_1m: int = 0
    prefix_1h: int = 0
    #: Distinct visitors seen behind this IP this hour: carrier NAT shows many.
    ip_visitors_1h: int = 0
    #: Clicks on this referrer's links.
    referrer_1m: int = 0
    referrer_1h: int = 0
    #: Distinct networks (prefixes) the referrer's links were opened from, this hour and today.
    referrer_networks_1h: int = 0
    referrer_networks_24h: int = 0
    #: The browser, the device (address and agent) or the prefix is one the referrer used
    #: themselves (their own join).
    self_visitor: bool = False
    self_device: bool = False
    self_prefix: bool = False
    #: Clicks on the referrer's links the hour before, and on the whole campaign this hour.
    referrer_prev_1h: int = 0
    campaign_1h: int = 0
    #: Times of the referrer's latest clicks, newest first (this click included).
    recent_times: tuple[float, ...] = ()
    #: What review and off-path analysis (flagger, tree watch) concluded about the referrer so
    #: far: "" (nothing), "suspect" (a suspicion that raised no flag, e.g. their link is posted
    #: on public pages), "open" (under review: their own flag, or membership of a flagged
    #: chain, ring or burst), "fraud" (decided by a reviewer); the finding's score and source
    #: (e.g. "tree:ring"). A "legit" decision clears it.
    referrer_review: str = ""
    referrer_review_score: float = 0.0
    referrer_review_source: str = ""


@dataclass(frozen=True, slots=True)
class Signal:
    """A detector's finding: ``value`` in [0, 1] (0 = nothing suspicious) and why, for people."""

    value: float
    reason: str = ""
    #: For the decision policy: "automation" and "flood" may block; "self" denies credit.
    kind: str = ""


NOTHING = Signal(0.0)


class Detector(Protocol):
    #: Stable identifier, used in reasons, features and metrics.
    name: str
    #: Relative cost; the engine runs cheap detectors first.
    cost: int
    #: What the detector reads: "ua", "headers", "network", "history".
    reads: frozenset[str]

    def score(self, click: ClickInput, history: History) -> Signal: ...


def four_decimals(value: float) -> float:
    """``value`` to four decimals, as scores and features are recorded. Half-up arithmetic
    rather than round(), which converts through decimal digits and cost 3% of a click's
    instructions (a dozen calls a click). The two differ in the last decimal at most, for values
    whose binary form sits on a decimal tie."""
    return math.floor(value * 10000.0 + 0.5) / 10000.0
