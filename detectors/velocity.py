"""Velocity: too many clicks from one visitor, IP or network in a short time.

Carrier NAT puts hundreds of honest people behind one public IP, and a viral sharer's friends
arrive in bursts, so raw counts mislead. An IP is judged by its clicks per distinct visitor (NAT:
about one each; one machine clicking: many), and only sustained floods score high.
"""

from __future__ import annotations

from detectors.base import NOTHING, ClickInput, History, Signal

#: Clicks per minute from one returning visitor that no person makes on one campaign.
VISITOR_PER_MINUTE = 6
#: Clicks per minute from one IP: above FLOOD it is a flood whoever is behind it.
IP_PER_MINUTE = 60
IP_FLOOD_PER_MINUTE = 240
#: Clicks per distinct visitor from one IP in an hour (NAT pools stay near 1-2).
IP_CLICKS_PER_VISITOR = 8


class VelocityDetector:
    name = "velocity"
    cost = 3
    reads = frozenset({"history"})

    def score(self, click: ClickInput, history: History) -> Signal:
        if not history.available:
            return NOTHING
        if history.ip_1m >= IP_FLOOD_PER_MINUTE:
            return Signal(0.97, f"{history.ip_1m} clicks from one IP within a minute", "flood")
        if history.visitor_1m >= VISITOR_PER_MINUTE:
            return Signal(
                min(0.9, 0.5 + 0.05 * history.visitor_1m),
                f"the same browser clicked {history.visitor_1m} times within a minute",
                "flood",
            )
        per_visitor = history.ip_1h / max(history.ip_visitors_1h, 1)
        if history.ip_1h >= 30 and per_visitor >= IP_CLICKS_PER_VISITOR:
            return Signal(
                0.7,
                f"{history.ip_1h} clicks from one IP this hour, "
                f"by only {history.ip_visitors_1h} browsers",
                "flood",
            )
        if history.ip_1m >= IP_PER_MINUTE:
            # Could be a big NAT at the festival peak: notable, not damning.
            return Signal(0.4, f"{history.ip_1m} clicks from one IP within a minute")
        return NOTHING
