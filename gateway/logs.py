"""Structured logs: one JSON object per line, with the click id when a line is about a click.

``refgate serve`` logs this way (gunicorn's own lines included); set ``REFGATE_LOG_FORMAT=text``
for the plain format. Fields: ``ts`` (unix seconds), ``level``, ``logger``, ``msg``, ``pid``, any
``extra`` the call passed (``click_id``, ``campaign``, ``decision``, ``outcome``, ...) and
``exc`` with the traceback of an exception.

Log lines carry what clients sent (user agents, paths, emails typed into the login form, a
webhook endpoint's error). JSON escapes control characters itself; the text format escapes them
(``\\n``, ``\\r``, ``\\x1b``...) in the message and the ``extra`` fields, and indents a traceback's
lines, so that nothing a client sends can start a line that reads as a record of its own.
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


#: The text format's line (the ``extra`` fields follow it as `` key=value``).
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Control characters (C0, DEL, C1) and the Unicode line and paragraph separators, which some
#: log viewers also break lines at, as escapes.
_ESCAPES = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
} | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def escape_controls(text: str) -> str:
    """``text`` on one line: every control character written as an escape."""
    return text.translate(_ESCAPES)


class TextFormatter(logging.Formatter):
    """The plain format (``REFGATE_LOG_FORMAT=text``): one line per record, whatever a client
    put in its message or ``extra`` fields (see the module docstring); a traceback follows on
    indented lines."""

    def __init__(self, fmt: str = TEXT_FORMAT, datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The record is shared with every other handler: the escaped message is put on it only
        # while this line is made.
        message = record.message
        extra = "".join(
            f" {key}={escape_controls(str(value))}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        )
        record.message = escape_controls(message) + extra
        try:
            return super().formatMessage(record)
        finally:
            record.message = message

    def formatException(self, ei: Any) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    """A traceback's lines, each escaped and indented: an exception's message may hold a
    client's line breaks, and no line of it may start at the margin like a record."""
    return "\n".join(f"    {escape_controls(line)}" for line in text.split("\n"))


def json_logs() -> bool:
    return os.environ.get("REFGATE_LOG_FORMAT", "json").strip().lower() != "text"


def use_log_format() -> None:
    """Give the root logger's handlers the configured format (JSON unless
    ``REFGATE_LOG_FORMAT=text``): `refgate serve` (whose workers inherit them, gunicorn's own
    lines go through ``gateway.server.GunicornLogger``) and `refgate jobs` call this before
    they log anything. gunicorn's access log stays off: it costs every request."""
    formatter = JsonFormatter() if json_logs() else TextFormatter()
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
