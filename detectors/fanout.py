"""Token fan-out: one sharer's link opened from far more networks than their reach explains.

A link scraped or posted on a public board is opened from hundreds of unrelated networks within
the hour; a sharer's friends come from a handful. Honest viral sharers also fan out, so the signal
is moderate and scales with how far this hour exceeds the sharer's own day so far.
"""

from __future__ import annotations

from detectors.base import NOTHING, ClickInput, History, Signal

#: Distinct networks in an hour below which fan-out is never notable (a sharer in a few big
#: groups reaches dozens).
MIN_NETWORKS = 150
#: The most fan-out alone may score: below the deny-credit threshold, so it only counts together
#: with other evidence (honest viral sharers fan out too).
MAX_ALONE = 0.45
#: Networks the sharer reached earlier today before growth means anything.
MIN_HISTORY = 20


def reach_growth(history: History) -> float:
    """This hour's distinct networks over the sharer's hourly average before it (>= 1)."""
    before = max(history.referrer_networks_24h - history.referrer_networks_1h, 0)
    return history.referrer_networks_1h / max(before / 23.0, 1.0)


class FanOutDetector:
    name = "fanout"
    cost = 3
    reads = frozenset({"history"})

    def score(self, click: ClickInput, history: History) -> Signal:
        if not history.available or history.referrer_networks_1h < MIN_NETWORKS:
            return NOTHING
        earlier = history.referrer_networks_24h - history.referrer_networks_1h
        growth = reach_growth(history) if earlier >= MIN_HISTORY else 1.0
        value = min(MAX_ALONE, 0.15 + 0.0005 * history.referrer_networks_1h + 0.02 * growth)
        return Signal(
            value,
            f"this link was opened from {history.referrer_networks_1h} networks in the last hour",
        )
