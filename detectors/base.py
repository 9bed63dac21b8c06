"""The one interface every detector implements, and the data it reads."""

from __future__ import annotations

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


@dataclass(slots=True)
class History:
    """What the store knew about this click's neighbourhood, read in the click's one round trip."""

    available: bool = True


@dataclass(frozen=True, slots=True)
class Signal:
    """A detector's finding: ``value`` in [0, 1] (0 = nothing suspicious) and why, for people."""

    value: float
    reason: str = ""


NOTHING = Signal(0.0)


class Detector(Protocol):
    #: Stable identifier, used in reasons, features and metrics.
    name: str
    #: Relative cost; the engine runs cheap detectors first.
    cost: int
    #: What the detector reads: "ua", "headers", "network", "history".
    reads: frozenset[str]

    def score(self, click: ClickInput, history: History) -> Signal: ...
