"""Datacenter and VPN networks: promotions for people are rarely opened from a server."""

from __future__ import annotations

from detectors.base import NOTHING, ClickInput, History, Signal

#: Why a click from a datacenter network is noted (also read from the stream: detectors.flagging
#: counts each sharer's clicks from servers, however the model scored them one by one).
DATACENTER_REASON = "opened from a datacenter network"


class NetworkDetector:
    name = "network"
    cost = 1
    reads = frozenset({"network"})

    def score(self, click: ClickInput, history: History) -> Signal:
        if click.network == "datacenter":
            return Signal(0.55, DATACENTER_REASON, "datacenter")
        if click.network == "vpn":
            return Signal(0.3, "opened through a known VPN")
        return NOTHING
