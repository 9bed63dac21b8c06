"""Following a campaign stream from a cursor kept in the store: the jobs' one reading loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Stream entries read per XRANGE by the jobs and the exporter. Redis answers one command at a
#: time: 5,000 click events (about 700 bytes each) kept it busy for 6 ms per read, and every
#: click waiting on it then; 500 take a quarter of a millisecond.
STREAM_BATCH = 500


def follow(
    redis: Any,
    stream: str,
    cursors: str,
    cursor_field: str,
    handle: Callable[[list[Any]], int],
    batch: int,
    *,
    legacy: str | None = None,
    reads: int = 1,
) -> int:
    """Hand ``handle`` the entries of ``stream`` after the cursor in hash ``cursors``, batch by
    batch, moving the cursor after each batch; returns the sum of what ``handle`` returned.
    ``legacy``: a hash where earlier versions kept the cursor (the campaign's counters), read
    when ``cursors`` has none yet and cleared once the cursor has moved. ``reads``: how many
    reads of ``batch`` entries one hand-over may gather, for handlers whose cost is per
    distinct subject in a hand-over more than per entry (each read stays short for Redis).

    At least once: a process that dies between handling a batch and moving the cursor hands the
    batch again to the next run, so handlers must be idempotent (raising a flag is).
    """
    total = 0
    while True:
        found = redis.hget(cursors, cursor_field)
        if found is None and legacy is not None:
            found = redis.hget(legacy, cursor_field)
        cursor = (found or b"0-0").decode()
        entries: list[Any] = []
        for _ in range(reads):
            read = redis.xrange(stream, min=f"({cursor}", max="+", count=batch)
            entries += read
            if len(read) < batch:
                break
            cursor = read[-1][0].decode()
        if not entries:
            return total
        total += handle(entries)
        redis.hset(cursors, cursor_field, entries[-1][0])
        if legacy is not None:
            redis.hdel(legacy, cursor_field)
