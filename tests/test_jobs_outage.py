"""A store outage in the periodic jobs: logged when it starts, now and then while it lasts, and
when it ends; not once per job every tick (it had been five warnings every 5 s)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway.jobs import OUTAGE_REMINDER, Job, Scheduler
from tests.redisproc import RedisProcess

pytestmark = pytest.mark.slow


def test_a_store_outage_is_logged_when_it_starts_now_and_then_and_when_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    # No retries: each refused call fails at once (what the scheduler logs is under test).
    client = redis.Redis(
        host="127.0.0.1", port=server.port, socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    clock = [1_000_000.0]
    scheduler = Scheduler(
        client,
        [
            Job("flagger", interval=5, run=lambda now: client.incr("flagger")),
            Job("webhooks", interval=5, run=lambda now: client.incr("webhooks")),
            Job("model", interval=5, run=lambda now: client.get("model"), local=True),
        ],
        clock=lambda: clock[0],
    )
    caplog.set_level(logging.INFO, logger="gateway.jobs")

    def lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "gateway.jobs"]

    try:
        assert scheduler.tick() == ["flagger", "webhooks", "model"]
        assert lines() == []

        server.stop()
        # A tick every 5 s for half a minute, then one just before and one at the reminder.
        steps = [5.0] * 6 + [OUTAGE_REMINDER - 35, 5.0, 5.0]
        for step in steps:
            clock[0] += step
            assert scheduler.tick() == []
            # Each tick still says what it could not run (`refgate jobs --once` exits on it).
            assert set(scheduler.failures) == {"flagger", "webhooks", "model"}
        warnings = lines()
        assert [r.levelno for r in warnings] == [logging.WARNING, logging.WARNING]
        started, reminder = (r.getMessage() for r in warnings)
        assert started.startswith("store unavailable, periodic jobs skipped until it answers: ")
        assert "(jobs: flagger, webhooks, model)" in started
        assert f"for {OUTAGE_REMINDER:.0f} s ({len(steps)} failed tries)" in reminder

        server.start()
        clock[0] += 5
        # (The shared jobs' locks, taken before the outage, may still be held in real time.)
        assert "model" in scheduler.tick()
        assert scheduler.failures == {}
        ended = lines()[2:]
        assert [r.levelno for r in ended] == [logging.INFO]
        assert ended[0].getMessage() == (
            f"store reachable again, periodic jobs resume after {sum(steps):.0f} s "
            f"({len(steps)} failed tries)"
        )
        # Quiet again: nothing more while the store answers.
        for _ in range(3):
            clock[0] += 5
            scheduler.tick()
        assert len(lines()) == 3
    finally:
        client.close()
        server.stop()
