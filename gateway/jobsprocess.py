"""``refgate jobs``: the periodic jobs in a process of their own, and its supervisor in serve.

The jobs (flagger, tree watch, webhook deliveries, platform watch, model refresh) read whole
event streams; in a serving worker's thread they would hold that worker's GIL while clicks wait.
``refgate serve`` therefore runs them here, at a lower CPU priority (``REFGATE_JOBS_NICE``): at
a festival peak the clicks get the cores and the analysis catches up afterwards. Any number of
these processes may run (each job holds a store lock while due, gateway.jobs), so one per
machine, or one per deployment, both work.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

from gateway import logs

log = logging.getLogger(__name__)

#: Environment that tells served apps to leave the jobs to this process.
WORKERS_ENV = "REFGATE_JOBS_IN_WORKERS"


def lower_priority(nice: int) -> int:
    """Raise this process's niceness to ``nice`` (never lowers it: that needs privileges)."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    return max(nice, current)


class JobsFailed(Exception):
    """``refgate jobs --once`` could not run every job that was due: ``failures`` maps each
    job to why (the store unreachable, an error), ``ran`` names those that did run."""

    def __init__(self, ran: list[str], failures: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {why}" for name, why in failures.items()))
        self.ran = ran
        self.failures = failures


def run(*, once: bool, period: float) -> list[str]:
    """Run the jobs in this process: one tick with ``once`` (returns what ran; raises
    :class:`JobsFailed` when a job could not run), else until SIGTERM or SIGINT, or until the
    process that started this one is gone."""
    from gateway import create_app
    from gateway.services import EXTENSION, Services

    if not once:
        # As refgate serve's workers log (REFGATE_LOG_FORMAT), from the first line: building
        # the app below already warns (the store's persistence, a store that cannot be reached)
        # and those lines came out in the plain format, unreadable to a JSON log pipeline.
        logs.use_log_format()
    # The app built here must not start a jobs thread of its own as well.
    app = create_app({WORKERS_ENV: "0"})
    services: Services = app.extensions[EXTENSION]
    scheduler = services.scheduler
    try:
        if once:
            ran = scheduler.tick()
            # Under cron the exit status is all anyone watches: a store that cannot be reached
            # must not pass for "nothing was due" run after run.
            if scheduler.failures:
                raise JobsFailed(ran, scheduler.failures)
            return ran
        nice = lower_priority(services.settings.jobs_nice)
        parent = os.getppid()

        def stop(signum: int, frame: FrameType | None) -> None:
            scheduler.stop()  # the job under way finishes; no new one starts

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # Orphaned (the server was killed outright): stop rather than run on unsupervised.
        watchdog = threading.Thread(
            target=_stop_when_orphaned, args=(parent, scheduler.stop), daemon=True
        )
        watchdog.start()
        log.info("running periodic jobs every %.1f s at nice %d", period, nice)
        scheduler.run(period)
        return []
    finally:
        services.close()


def _stop_when_orphaned(parent: int, stop: Callable[[], None]) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    log.warning("the process that started the jobs is gone; stopping")
    stop()


class JobsProcess:
    """Keeps one ``refgate jobs`` process running beside the gunicorn master: restarted with
    a growing delay if it dies, stopped with the server."""

    def __init__(self, argv: Sequence[str] | None = None) -> None:
        self.argv = list(argv or [sys.executable, "-c", "from gateway.cli import main; main()"])
        self.argv.append("jobs")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="refgate-jobs", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        delay = 1.0
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                started = time.monotonic()
                # Our own interpreter and module, no shell, no outside input. A session of its
                # own: a Ctrl-C at the terminal goes to the server, which stops this process
                # itself (stop() below); reaching the jobs process first, it read as a crash.
                self._process = process = subprocess.Popen(  # noqa: S603
                    self.argv, start_new_session=True
                )
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 60:
                delay = 1.0  # it ran for a while: a fresh failure, not a crash loop
            log.error("the jobs process exited (%s); restarting in %.0f s", code, delay)
            self.restarts += 1
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 30.0)

    def stop(self, timeout: float = 15.0) -> None:
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._thread is not None:
            self._thread.join(timeout=timeout)


def serve_starts_jobs_process() -> bool:
    """Whether ``refgate serve`` starts a jobs process: unless REFGATE_JOBS_IN_WORKERS says
    where the jobs run, either in the workers (1) or somewhere else, such as one ``refgate
    jobs`` for a whole deployment (0)."""
    return WORKERS_ENV not in os.environ
