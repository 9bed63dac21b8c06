"""Structured logs: one JSON object per line, with the click id when a line is about a click.

``refgate serve`` logs this way (gunicorn's own lines included); set ``REFGATE_LOG_FORMAT=text``
for the plain format. Fields: ``ts`` (unix seconds), ``level``, ``logger``, ``msg``, ``pid``, any
``extra`` the call passed (``click_id``, ``campaign``, ``decision``, ``outcome``, ...) and
``exc`` with the traceback of an exception.
"""

from __future__ import annotations

import logging
import os
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
