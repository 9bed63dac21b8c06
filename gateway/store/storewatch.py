"""Keeping the embedded store up: ``refgate serve`` restarts its redis-server if it dies.

The embedded store is a process refgate starts itself, so refgate also answers for it staying up:
an out-of-memory kill or a crash would otherwise leave every worker degraded (clicks redirecting
unrecorded into the spool) until someone restarts the whole server. A thread in the serving
process checks the server's process every few seconds and starts it again once it is gone, from
its AOF, with a growing delay while starts fail. A server that is alive but not answering
(stopped, busy, loading) is left alone: a second one on the same files would corrupt them, and
the workers already degrade while it does not answer.
"""

from __future__ import annotations

import logging
import threading

from gateway.store.embedded import EmbeddedRedis, EmbeddedStoreError

log = logging.getLogger(__name__)


class EmbeddedStoreWatch:
    def __init__(self, store: EmbeddedRedis, interval: float = 2.0) -> None:
        self.store = store
        self.interval = interval
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="refgate-store-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        delay = self.interval
        while not self._stopping.wait(delay):
            if self.store.process_alive():
                delay = self.interval
                continue
            log.error("the embedded store's redis-server is gone; starting it again")
            try:
                self.store.ensure_running()
            except (EmbeddedStoreError, OSError) as exc:
                delay = min(delay * 2, 60.0)
                log.error("could not restart the embedded store (again in %.0f s): %s", delay, exc)
                continue
            self.restarts += 1
            delay = self.interval

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 20)
