"""Prometheus metrics (prometheus-client), served at ``/metrics``.

Under gunicorn every worker is a process of its own, so ``refgate serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` (``<data dir>/metrics`` unless set) before any worker starts:
prometheus-client then keeps each worker's values in memory-mapped files there and ``/metrics``
adds them up, whichever worker answers the scrape. prometheus-client picks its mode when it is
first imported, so this module imports it only when a :class:`Metrics` is built (in the worker,
after the fork), never at import time.

The click path's cost is kept small: label children are looked up once and kept in a dict, so a
click pays for one counter increment and one histogram observation (see bench/load.py, which
prints what that costs per click). The spool depth is counted when scraped, not per click.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds; the click path answers in a few milliseconds, a slow store shows from 100 ms up.
#: Fine around 10-100 ms, where a p99 under overload is judged (bench/load.py reads them).
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1,
    0.15, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry()
        reg = self.registry
        self._clicks = Counter(
            "refgate_clicks",
            "Clicks answered, by decision, platform and outcome (redirect, fallback, ...).",
            ["decision", "platform", "outcome"],
            registry=reg,
        )
        self.latency = Histogram(
            "refgate_click_seconds",
            "Time to answer GET /s/<token> in the worker (admitted clicks), from the worker "
            "taking the connection to the answer: the wait in its queue included.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._shed = Counter(
            "refgate_shed_requests",
            "Requests refused: 'click' and 'other' by admission control (503), 'door' by the "
            "worker when its queue is full (503, not parsed), "
            "'prefix' and 'token' by the flood limits (429).",
            ["kind"],
            registry=reg,
        )
        self.unscored = Counter(
            "refgate_clicks_unscored",
            "Clicks answered without the store (outage, timeout or open breaker): no credit.",
            registry=reg,
        )
        self.spooled = Counter(
            "refgate_events_spooled", "Click events written to the local spool.", registry=reg
        )
        self.lost = Counter(
            "refgate_events_lost",
            "Click events neither the store nor the spool took (the store unavailable and the "
            "spool's disk full or failing): redirected, never recorded.",
            registry=reg,
        )
        self.drained = Counter(
            "refgate_events_drained",
            "Spooled click events delivered to the store (redeliveries included).",
            registry=reg,
        )
        self._store_errors = Counter(
            "refgate_store_errors",
            "Store calls that failed, by where: click (the click's round trip), load (a "
            "campaign), record (writing events), drain (the spool), automated (counts of "
            "scripted requests), api and console (a request failed closed with 503).",
            ["where"],
            registry=reg,
        )
        self._click_children: dict[tuple[str, str, str], Any] = {}
        self._shed_children = {
            k: self._shed.labels(k) for k in ("click", "other", "door", "prefix", "token")
        }
        self._error_children = {
            k: self._store_errors.labels(k)
            for k in (
                "click",
                "load",
                "record",
                "drain",
                "automated",
                "api",
                "console",
                "share",
                "media",
            )
        }

    # -- the click path --------------------------------------------------------------------------

    def click(self, decision: str, platform: str, outcome: str) -> None:
        key = (decision, platform, outcome)
        child = self._click_children.get(key)
        if child is None:
            child = self._click_children[key] = self._clicks.labels(*key)
        child.inc()

    def shed(self, kind: str) -> None:
        self._shed_children[kind].inc()

    def store_error(self, where: str) -> None:
        self._error_children[where].inc()

    # -- the scrape ----------------------------------------------------------------------------

    def render(self, spool_depth: Callable[[], int]) -> tuple[bytes, str]:
        """The exposition text: this process's metrics, or every worker's in multiprocess mode,
        and the spool depth (shared by the workers of one data dir) counted now."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.core import GaugeMetricFamily
        from prometheus_client.multiprocess import MultiProcessCollector

        if self.multiprocess:
            source = CollectorRegistry()
            MultiProcessCollector(source)  # type: ignore[no-untyped-call]
        else:
            source = self.registry

        class SpoolDepth:
            def collect(self) -> Iterable[GaugeMetricFamily]:
                yield GaugeMetricFamily(
                    "refgate_spool_depth", "Click events waiting in the spool.", spool_depth()
                )

        extra = CollectorRegistry()
        extra.register(SpoolDepth())
        return generate_latest(source) + generate_latest(extra), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit hook: a dead worker's live gauges stop counting."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
