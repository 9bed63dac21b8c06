"""Self-referral: the sharer opening their own link from their own device or network.

The sharer's devices are known once they joined through someone's link (their visitor id, IP
hash and prefix are then kept with the referrer). Opening your own link is harmless; being
credited for it is not, so this signal denies credit rather than blocking anyone.
"""

from __future__ import annotations

from detectors.base import NOTHING, ClickInput, History, Signal


class SelfReferralDetector:
    name = "self_referral"
    cost = 2
    reads = frozenset({"history"})

    def score(self, click: ClickInput, history: History) -> Signal:
        if not history.available:
            return NOTHING
        if history.self_visitor:
            return Signal(0.9, "the sharer's own browser opened their link", "self")
        if history.self_ip:
            return Signal(0.75, "opened from the sharer's own IP address", "self")
        if history.self_prefix:
            # A household or an office shares a /24: weak on its own.
            return Signal(0.25, "opened from the sharer's own network")
        return NOTHING
