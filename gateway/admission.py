"""Admission control: a bounded number of requests in flight per worker, the rest shed at once.

Under a surge, a request that waits in a queue until its client gives up is work wasted twice; so
each worker admits only as many requests as it can finish promptly and answers the others at once
with ``503`` and ``Retry-After`` (the busy page for people, JSON under ``/api/``). Clicks and
everything else share one counter with two limits: clicks are admitted while fewer than
``click_limit`` requests are in flight, the API, console and media while fewer than the lower
``other_limit``, so they are shed first and the click path keeps its share of the worker.

A counter under a lock rather than a semaphore because two kinds of request share it with
different limits; the lock is held for a comparison and an increment, never while serving, and
nobody waits on it for capacity (a refused request is answered, not queued).
"""

from __future__ import annotations

import threading

#: Seconds a shed client is asked to wait before trying again.
RETRY_AFTER = 2


class Admission:
    __slots__ = ("_lock", "click_limit", "in_flight", "other_limit")

    def __init__(self, click_limit: int, other_limit: int) -> None:
        if not 1 <= other_limit <= click_limit:
            raise ValueError("need 1 <= other_limit <= click_limit")
        self.click_limit = click_limit
        self.other_limit = other_limit
        self.in_flight = 0
        self._lock = threading.Lock()

    def enter(self, limit: int) -> bool:
        """Admit a request if fewer than ``limit`` are in flight; never blocks for capacity."""
        with self._lock:
            if self.in_flight >= limit:
                return False
            self.in_flight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
