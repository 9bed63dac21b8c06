"""refgate's gunicorn worker: the threaded worker, noting how long each request queued.

gunicorn's ``gthread`` worker accepts connections on its main thread and hands each request to a
thread pool; when every thread is busy, requests wait in the pool's queue, out of sight of the
application. This worker stamps a request when it is queued and tells the admission control
(:mod:`gateway.admission`) how long it waited when a thread picks it up, so overload is seen, and
shed, where it builds up.
"""

from __future__ import annotations

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from gateway.admission import set_queue_wait

SPEC = "gateway.worker.RefgateWorker"


class RefgateWorker(ThreadWorker):  # type: ignore[misc]
    def enqueue_req(self, conn: Any) -> None:
        conn.refgate_queued = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        queued = getattr(conn, "refgate_queued", None)
        set_queue_wait(0.0 if queued is None else time.monotonic() - queued)
        return super().handle(conn)
