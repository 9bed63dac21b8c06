"""A WSGI app that takes its time, for the worker's door test (tests/test_worker.py).

The door belongs to gunicorn's worker, not to the application, so the test drives the real
worker with an app whose requests last as long as the test says (``?seconds``), configured the
way refgate's services configure the worker (``extensions["refgate"].settings.door_queue``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

from gateway.admission import queue_wait


class DoorMetrics:
    def __init__(self) -> None:
        self.shed_count = 0

    def shed(self, kind: str) -> None:
        assert kind == "door"
        self.shed_count += 1


class SlowApp:
    def __init__(self, door_queue: int) -> None:
        self.extensions = {
            "refgate": SimpleNamespace(
                settings=SimpleNamespace(door_queue=door_queue), metrics=DoorMetrics()
            )
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path, query = environ.get("PATH_INFO", "/"), environ.get("QUERY_STRING") or "0"
        if path == "/spin":
            # Holds the GIL for ``query`` seconds, giving it up at most every 0.2 s: a thread of
            # the pool that is idle still starts late (as on a machine busy with other work).
            interval = sys.getswitchinterval()
            sys.setswitchinterval(0.2)
            try:
                deadline = time.monotonic() + float(query)
                while time.monotonic() < deadline:
                    pass
            finally:
                sys.setswitchinterval(interval)
            body = b"ok"
        elif path == "/wait":
            # What the worker told the admission control: how long this request queued.
            body = f"{queue_wait():.3f}".encode()
        else:
            time.sleep(float(query))
            body = b"ok"
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]


app = SlowApp(door_queue=2)
