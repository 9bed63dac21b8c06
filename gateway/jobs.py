"""Periodic work off the click path, run by whichever worker gets there first.

Each job holds a Redis lock (``SET NX PX interval``) while it is due, so in a deployment of many
workers and machines a job runs at most once per interval, and keeps running when any one of
them dies. Jobs take the time as an argument (a clock you pass in), so tests and replay drive
them with their own time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from gateway.logs import OutageLog
from gateway.store import keys

if TYPE_CHECKING:
    from gateway.campaigns import Campaign, CampaignService
    from gateway.flags import FlagService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    interval: float
    run: Callable[[float], object]
    #: Per process (every worker runs it, e.g. picking up a new model), not once per deployment.
    local: bool = False


class FlaggingJob(ABC):
    """A job that examines every campaign in turn and raises flags (the flagger, the tree
    watch): ``run`` is what the scheduler calls, ``run_campaign`` what each job defines."""

    def __init__(self, store: Any, campaigns: CampaignService, flags: FlagService) -> None:
        self._redis = store
        self._campaigns = campaigns
        self._flags = flags

    def run(self, now: float) -> int:
        """Examine what is new in every campaign; returns how many flags were newly raised."""
        return sum(self.run_campaign(campaign, now) for campaign in self._campaigns.list())

    @abstractmethod
    def run_campaign(self, campaign: Campaign, now: float) -> int:
        """Examine what is new in one campaign; returns how many flags were newly raised."""


#: Seconds between the reminders that a store outage goes on (README, "Logs").
OUTAGE_REMINDER = 300.0


class Scheduler:
    def __init__(
        self, store: Any, jobs: Sequence[Job], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = store
        self.jobs = tuple(jobs)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owner = f"{os.uname().nodename}:{os.getpid()}"
        self._next_local: dict[str, float] = {}
        #: The jobs the latest tick could not run, with why: ``refgate jobs --once`` (cron)
        #: exits non-zero on them, or a store it cannot reach reads as "nothing was due".
        self.failures: dict[str, str] = {}
        #: A store outage is logged when it starts, every few minutes while it lasts and when
        #: it ends, not once per job every tick (five lines every 5 s per process).
        self.outage = OutageLog(
            log,
            "store unavailable, periodic jobs skipped until it answers",
            "store reachable again, periodic jobs resume",
            remind=OUTAGE_REMINDER,
            clock=clock,
        )

    def start(self, period: float = 5.0, *, local_only: bool = False) -> None:
        """Tick every ``period`` seconds in a thread of this process; with ``local_only``, only
        the per-process jobs (a serving worker beside a ``refgate jobs`` process still picks up
        a newly activated model)."""
        self._thread = threading.Thread(
            target=self._loop, args=(period, local_only), name="refgate-jobs", daemon=True
        )
        self._thread.start()

    def _loop(self, period: float, local_only: bool = False) -> None:
        while not self._stop.wait(period):
            self.tick(local_only=local_only)

    def run(self, period: float = 5.0) -> None:
        """Tick now and every ``period`` seconds in the calling thread, until :meth:`stop`
        (``refgate jobs``)."""
        self.tick()
        self._loop(period)

    def tick(self, *, local_only: bool = False) -> list[str]:
        """Run every job whose lock this process wins (with ``local_only``, the per-process
        jobs only); returns the names of the jobs it ran."""
        ran = []
        failures: dict[str, str] = {}
        unavailable: dict[str, RedisError] = {}
        answered = False  # the store answered at least once this tick
        now = self._clock()
        for job in self.jobs:
            if local_only and not job.local:
                continue
            try:
                if job.local:
                    if now < self._next_local.get(job.name, 0.0):
                        continue
                    self._next_local[job.name] = now + job.interval
                else:
                    lock = keys.job_lock(job.name)
                    won = self._redis.set(lock, self._owner, nx=True, px=int(job.interval * 1000))
                    answered = True
                    if not won:
                        continue
                job.run(now)
                ran.append(job.name)
                answered = True
            except RedisError as exc:
                unavailable[job.name] = exc
                failures[job.name] = f"store unavailable: {exc}"
            except Exception as exc:  # a failing job must not stop the others
                log.exception("job %s failed", job.name)
                failures[job.name] = f"failed: {exc.__class__.__name__}: {exc}"
        self.failures = failures
        if unavailable:
            names = ", ".join(unavailable)
            self.outage.failed(f"{next(iter(unavailable.values()))} (jobs: {names})")
        elif answered:
            self.outage.ok()
        return ran

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
