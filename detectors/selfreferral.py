"""Self-referral: the sharer opening their own link from their own device or network.

The sharer's devices are known once they joined through someone's link (their visitor id, their
device (address hash and agent) and prefix are then kept with the referrer). A bare address is
not enough: a carrier NAT puts hundreds of strangers, and a home a whole family, behind it.
Opening your own link is harmless; being credited for it is not, so this signal denies credit
rather than blocking anyone.

Its values are floors just above the deny-credit threshold, not claims that the click is almost
surely fraud: most clicks from a sharer's own browser are the sharer checking their link (or a
relative signing up on the sharer's phone), and alternate accounts are told apart by the habit
(detectors.flagging: several such clicks flag the referrer) and by the model, which scores the
click's other features. A higher floor ranked every such check above fraud the model is less
sure of, and raised a lone-click flag (CLICK_FLAG_SCORE) on every sharer who checked their link.
"""

from __future__ import annotations

from detectors.base import NOTHING, ClickInput, History, Signal

#: Distinct browsers behind an address this hour up to which it is a home, not a carrier NAT.
SMALL_NETWORK = 3
#: The floors: enough to deny credit (Policy.deny_credit_at 0.5), below a lone-click flag (0.9).
OWN_BROWSER = 0.6
OWN_PHONE = 0.55


class SelfReferralDetector:
    name = "self_referral"
    cost = 2
    reads = frozenset({"history"})

    def score(self, click: ClickInput, history: History) -> Signal:
        if not history.available:
            return NOTHING
        if history.self_visitor:
            return Signal(OWN_BROWSER, "the sharer's own browser opened their link", "self")
        if history.self_device:
            if history.ip_visitors_1h <= SMALL_NETWORK:
                return Signal(OWN_PHONE, "opened from the sharer's own phone and address", "self")
            # Behind a carrier NAT the same phone model and app version is common.
            return Signal(0.3, "same phone model and address as the sharer, on a shared network")
        if history.self_prefix:
            # A household or an office shares a /24: weak on its own.
            return Signal(0.15, "opened from the sharer's own network")
        return NOTHING
