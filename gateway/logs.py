"""Structured logs: one JSON object per line, with the click id when a line is about a click.

``refgate serve`` logs this way (gunicorn's own lines included); set ``REFGATE_LOG_FORMAT=text``
for the plain format. Fields: ``ts`` (unix seconds), ``level``, ``logger``, ``msg``, ``pid``, any
``extra`` the call passed (``click_id``, ``campaign``, ``decision``, ``outcome``, ...) and
``exc`` with the traceback of an exception.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import orjson

#: Attributes every LogRecord has: whatever else a record carries came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def json_logs() -> bool:
    return os.environ.get("REFGATE_LOG_FORMAT", "json").strip().lower() != "text"


def use_json() -> None:
    """Give the root logger's handlers the JSON format: `refgate serve` (whose workers inherit
    them, gunicorn's own lines go through ``gateway.server.GunicornLogger``) and `refgate jobs`
    call this before they log anything. gunicorn's access log stays off: it costs every
    request."""
    if not json_logs():
        return
    formatter = JsonFormatter()
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO)
    for handler in root.handlers:
        handler.setFormatter(formatter)


class OutageLog:
    """Log lines about an outage seen by a loop that retries (the jobs every few seconds, a
    worker's click path once a second): one warning when it starts, a reminder every
    ``remind`` seconds while it lasts, and one line when it ends, instead of a line per try.
    At 3 a.m. the start, the end and its length are what matter; a line every few seconds per
    process buries them (and everything else).

    ``what`` names what is unavailable and what is affected, e.g. ``"store unavailable,
    periodic jobs skipped"``; ``back`` the end, e.g. ``"store reachable again, periodic jobs
    resume"``. Thread-safe enough for its use: a duplicate line in a race is
    harmless, a lost one is not possible for the start (``failed`` sets the start first)."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        back: str,
        *,
        remind: float = 300.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self.what = what
        self.back = back
        self.remind = remind
        self.level = level
        self._clock = clock
        #: When the outage started (the clock's time), or None when there is none.
        self.since: float | None = None
        self._last_line = 0.0
        self._failures = 0

    def failed(self, detail: object, **extra: Any) -> bool:
        """A try failed; returns whether a line was logged."""
        now = self._clock()
        self._failures += 1
        if self.since is None:
            self.since = self._last_line = now
            self._failures = 1
            self._log.log(self.level, "%s: %s", self.what, detail, extra=extra or None)
            return True
        if now - self._last_line >= self.remind:
            self._last_line = now
            self._log.log(
                self.level,
                "%s for %.0f s (%d failed tries): %s",
                self.what,
                now - self.since,
                self._failures,
                detail,
                extra=extra or None,
            )
            return True
        return False

    def ok(self) -> bool:
        """A try succeeded; logs the end of an outage (returns whether it did)."""
        since = self.since
        if since is None:
            return False
        self.since = None
        self._log.info(
            "%s after %.0f s (%d failed tries)",
            self.back,
            self._clock() - since,
            self._failures,
        )
        return True
