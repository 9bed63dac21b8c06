"""A WSGI app that takes its time, for the worker's door test (tests/test_worker.py).

The door belongs to gunicorn's worker, not to the application, so the test drives the real
worker with an app whose requests last as long as the test says (``?seconds``), configured the
way refgate's services configure the worker (``extensions["refgate"].settings.door_queue``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any


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
        time.sleep(float(environ.get("QUERY_STRING") or 0))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]


app = SlowApp(door_queue=2)
