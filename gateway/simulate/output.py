"""Writing the four output files: streamed, and renamed into place only when complete."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

CLICKS, LABELS, REFERRERS, SUMMARY = (
    "clicks.jsonl",
    "labels.jsonl",
    "referrers.jsonl",
    "summary.json",
)
OUTPUTS = (CLICKS, LABELS, REFERRERS, SUMMARY)
_PARTIAL = ".partial"
_BATCH = 8192


class Sink:
    def __init__(self, out: Path) -> None:
        self.out = out
        self._events = open(out / (CLICKS + _PARTIAL), "wb")  # noqa: SIM115 - closed in finish/abort
        self._labels = open(out / (LABELS + _PARTIAL), "wb")  # noqa: SIM115
        self._event_lines: list[bytes] = []
        self._label_lines: list[bytes] = []

    def write(self, event: bytes, label: bytes) -> None:
        self._event_lines.append(event)
        self._label_lines.append(label)
        if len(self._event_lines) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        self._events.write(b"".join(self._event_lines))
        self._labels.write(b"".join(self._label_lines))
        self._event_lines.clear()
        self._label_lines.clear()

    def finish(self, referrers: Iterable[dict[str, Any]], summary: dict[str, Any]) -> None:
        self._flush()
        self._events.close()
        self._labels.close()
        with open(self.out / (REFERRERS + _PARTIAL), "wb") as handle:
            handle.writelines(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in referrers)
        with open(self.out / (SUMMARY + _PARTIAL), "wb") as handle:
            handle.write(
                orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
            )
        for name in OUTPUTS:
            (self.out / (name + _PARTIAL)).replace(self.out / name)

    def abort(self) -> None:
        self._events.close()
        self._labels.close()
        for name in OUTPUTS:
            (self.out / (name + _PARTIAL)).unlink(missing_ok=True)
