"""Inter-click timing: people arrive irregularly; scripts click on a schedule.

Clicks of a shared link by different people form a roughly Poisson stream: the gaps between
them vary about as much as they last (coefficient of variation near 1). A script hammering a link
produces near-identical gaps. Needs the referrer's last few clicks (kept by the store).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

from detectors.base import NOTHING, ClickInput, History, Signal

MIN_INTERVALS = 6
REGULAR_CV = 0.15


@lru_cache(maxsize=1024)
def interval_stats(times: tuple[float, ...]) -> tuple[float, float] | None:
    """Mean gap and coefficient of variation of the gaps, newest-first times; None if too few.

    Plain float arithmetic: the statistics module computes exactly with Fractions, which costs
    100 us per call on the click path."""
    gaps = [newer - older for newer, older in itertools.pairwise(times)]
    if len(gaps) < MIN_INTERVALS:
        return None
    mean = sum(gaps) / len(gaps)
    if mean <= 0:
        return 0.0, 0.0
    variance = sum((gap - mean) ** 2 for gap in gaps) / len(gaps)
    return mean, math.sqrt(variance) / mean


class TimingRegularityDetector:
    name = "timing"
    cost = 4
    reads = frozenset({"history"})

    def score(self, click: ClickInput, history: History) -> Signal:
        if not history.available:
            return NOTHING
        found = interval_stats(history.recent_times)
        if found is None:
            return NOTHING
        mean, cv = found
        if cv < REGULAR_CV and mean < 120:
            return Signal(
                0.7, f"clicks on this link arrive every {mean:.1f} s like clockwork", "flood"
            )
        return NOTHING
