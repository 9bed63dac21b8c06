"""Click-to-conversion time: signing up within seconds of the click is a script, not a person.

Scored when a conversion arrives (not on the click path): the landing page takes a person at
least several seconds to read and fill in. Very slow conversions are normal (people come back).
"""

from __future__ import annotations

from detectors.base import NOTHING, Signal

#: Seconds from click to conversion below which no person signs up.
TOO_FAST = 3.0
SUSPICIOUSLY_FAST = 8.0


def conversion_time_signal(delay: float) -> Signal:
    if delay < 0:
        return Signal(0.9, "the conversion arrived before the click", "automation")
    if delay < TOO_FAST:
        return Signal(0.8, f"signed up {delay:.1f} s after the click")
    if delay < SUSPICIOUSLY_FAST:
        return Signal(0.35, f"signed up {delay:.1f} s after the click")
    return NOTHING
