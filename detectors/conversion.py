"""Click-to-conversion time: signing up within seconds of the click is a script, not a person.

Scored when a conversion arrives (not on the click path): the landing page takes a person at
least several seconds to read and fill in. Very slow conversions are normal (people come back).
"""

from __future__ import annotations

from detectors.base import NOTHING, Signal

#: Seconds from click to conversion below which no person signs up.
TOO_FAST = 3.0
SUSPICIOUSLY_FAST = 8.0
#: A sign-up this soon after its click is quick for a person (read the page, type a phone number,
#: wait for the code); one now and then is a practised person, most of a sharer's sign-ups being
#: this quick is a script working their link (gateway.trees).
QUICK_JOIN = 15.0
#: Sign-ups under one sharer before their pace means anything, and the quick share that flags.
QUICK_MIN = 5
QUICK_SHARE = 0.6


def conversion_time_signal(delay: float) -> Signal:
    if delay < 0:
        return Signal(0.9, "the conversion arrived before the click", "automation")
    if delay < TOO_FAST:
        return Signal(0.8, f"signed up {delay:.1f} s after the click")
    if delay < SUSPICIOUSLY_FAST:
        return Signal(0.35, f"signed up {delay:.1f} s after the click")
    return NOTHING
