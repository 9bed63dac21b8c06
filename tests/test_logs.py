"""Log lines cannot be forged by what clients send: a user agent, a path, an email typed into
the login form or a webhook endpoint's error may carry CR/LF, which in the text format began a
line of their own that read as a record ("FAKE level=error"). JSON escapes them itself."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from gunicorn.config import Config

from gateway.logs import JsonFormatter, TextFormatter
from gateway.server import GunicornLogger

FORGED = "\r\nFAKE level=error"


def record(exc_info: object = None) -> logging.LogRecord:
    return logging.getLogger("refgate.test").makeRecord(
        "refgate.test",
        logging.WARNING,
        __file__,
        1,
        "login failed for %s",
        (f"ann@example.com{FORGED}\x1b[31m",),
        exc_info,  # type: ignore[arg-type]
        extra={"user_agent": f"Mozilla/5.0{FORGED}", "campaign": "tea"},
    )


def test_text_lines_escape_control_characters_in_the_message_and_extra_fields() -> None:
    line = TextFormatter().format(record())
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line.endswith(
        "refgate.test: login failed for ann@example.com\\r\\nFAKE level=error\\x1b[31m"
        " user_agent=Mozilla/5.0\\r\\nFAKE level=error campaign=tea"
    ), line
    # Another handler of the same record still sees the message as it was.
    made = record()
    TextFormatter().format(made)
    assert made.message.endswith(f"{FORGED}\x1b[31m")


def test_a_traceback_in_text_is_indented_and_escaped() -> None:
    try:
        raise ValueError(f"bad webhook answer{FORGED}\u2028FAKE again")
    except ValueError:
        made = record(sys.exc_info())
    first, *rest = TextFormatter().format(made).split("\n")
    assert "login failed" in first and rest
    # No line of the traceback starts at the margin, where a record would.
    assert all(line.startswith("    ") for line in rest), rest
    assert any("ValueError: bad webhook answer\\r" in line for line in rest), rest
    # The exception's own line break stays one (a traceback is lines), but indented with it.
    assert "    FAKE level=error\\u2028FAKE again" in rest, rest
    assert "\u2028" not in "".join(rest) and "\r" not in "".join(rest)


def test_json_lines_stay_one_valid_object() -> None:
    line = JsonFormatter().format(record())
    assert "\n" not in line and "\r" not in line
    entry = json.loads(line)
    assert entry["msg"] == f"login failed for ann@example.com{FORGED}\x1b[31m"
    assert entry["user_agent"] == f"Mozilla/5.0{FORGED}" and entry["level"] == "warning"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_gunicorn_lines_are_escaped_too(monkeypatch: pytest.MonkeyPatch, log_format: str) -> None:
    monkeypatch.setenv("REFGATE_LOG_FORMAT", log_format)
    logger = GunicornLogger(Config())
    handlers = logger.error_log.handlers
    assert handlers
    for handler in handlers:
        line = handler.format(
            logging.LogRecord(
                "gunicorn.error", logging.WARNING, "", 0, f"Invalid{FORGED}", (), None
            )
        )
        assert "\n" not in line and "\r" not in line, line
        if log_format == "text":
            assert line.endswith("[WARNING] Invalid\\r\\nFAKE level=error"), line
