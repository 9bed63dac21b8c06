"""Header consistency: real browsers send Accept-Language; many scripts do not."""

from __future__ import annotations

from detectors.base import NOTHING, ClickInput, History, Signal


class HeaderConsistencyDetector:
    name = "headers"
    cost = 2
    reads = frozenset({"headers"})

    def score(self, click: ClickInput, history: History) -> Signal:
        if not click.accept_language.strip():
            return Signal(0.3, "no Accept-Language header")
        return NOTHING
