"""Admission control: a bounded number of requests in flight per worker, the rest shed at once.

Under a surge, a request that waits in a queue until its client gives up is work wasted twice; so
each worker admits only as many requests as it can finish promptly and answers the others at once
with ``503`` and ``Retry-After`` (the busy page for people, JSON under ``/api/``). Clicks and
everything else share one counter with two limits: clicks are admitted while fewer than
``click_limit`` requests are in flight, the API, console and media while fewer than the lower
``other_limit``, so they are shed first and the click path keeps its share of the worker.

Counting in-flight requests is not enough under gunicorn's threaded worker: the work is mostly
CPU under one GIL, so requests wait in the worker's queue (connections accepted, no thread free)
rather than in flight. So the worker (:class:`gateway.worker.RefgateWorker`) notes when each
request was queued, and a request that waited longer than ``click_wait`` (clicks) or
``other_wait`` (the rest) is shed too: by then its client is better served by a fast 503 than a
slow answer, and answering it at once drains the queue.

A counter under a lock rather than a semaphore because two kinds of request share it with
different limits; the lock is held for a comparison and an increment, never while serving, and
nobody waits on it for capacity (a refused request is answered, not queued).
"""

from __future__ import annotations

import threading

#: Seconds a shed client is asked to wait before trying again.
RETRY_AFTER = 2
#: Never shed, neither at the door nor by admission control: probes and scrapes are cheap, and a
#: load balancer (or Prometheus) must see the truth most of all under load.
UNSHED = frozenset({"/healthz", "/readyz", "/metrics"})

_local = threading.local()


def set_queue_wait(seconds: float) -> None:
    """The worker thread about to handle a request says how long it waited in the queue."""
    _local.waited = seconds


def queue_wait() -> float:
    waited: float = getattr(_local, "waited", 0.0)
    return waited


class Admission:
    __slots__ = ("_lock", "click_limit", "click_wait", "in_flight", "other_limit", "other_wait")

    def __init__(
        self,
        click_limit: int,
        other_limit: int,
        click_wait: float = 1e9,
        other_wait: float | None = None,
    ) -> None:
        if not 1 <= other_limit <= click_limit:
            raise ValueError("need 1 <= other_limit <= click_limit")
        self.click_limit = click_limit
        self.other_limit = other_limit
        self.click_wait = click_wait
        self.other_wait = click_wait / 2 if other_wait is None else other_wait
        self.in_flight = 0
        self._lock = threading.Lock()

    def enter(self, limit: int, max_wait: float = 1e9) -> bool:
        """Admit a request if fewer than ``limit`` are in flight and it did not wait in the
        worker's queue longer than ``max_wait`` seconds; never blocks for capacity."""
        if getattr(_local, "waited", 0.0) > max_wait:
            return False
        with self._lock:
            if self.in_flight >= limit:
                return False
            self.in_flight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
