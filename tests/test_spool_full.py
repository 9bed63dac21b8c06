"""The spool's disk full while the store is down: the events that neither took are counted and
said once (not a traceback every 50 ms), and the worker's spool works again once there is room;
it had kept a closed file and failed every later write and drain, for good."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import redis

from gateway.metrics import Metrics
from gateway.recorder import EventRecorder, Spool
from tests.events import click_event
from tests.redisproc import RedisProcess

pytestmark = pytest.mark.slow


def test_a_full_spool_loses_events_loudly_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    client = redis.Redis.from_url(server.url, socket_timeout=1)
    metrics = Metrics()
    spool = Spool(tmp_path / "spool")
    # The flusher thread sleeps for an hour: the test flushes and drains itself.
    recorder = EventRecorder(
        client, spool, metrics=metrics, flush_after=3600.0, drain_interval=3600.0
    )
    caplog.set_level(logging.INFO, logger="gateway.recorder")
    try:
        server.stop()
        # A full disk: every write to the spool file fails with ENOSPC.
        os.symlink("/dev/full", spool.active_path)
        for number in range(100):
            recorder.record(click_event(1, number))
            if number % 10 == 9:
                recorder.flush()  # no exception, batch after batch
        assert recorder.lost == 100
        assert metrics.registry.get_sample_value("refgate_events_lost_total") == 100
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert (
            errors[0]
            .getMessage()
            .startswith(
                "spool write failed while the store is unavailable, click events lost: "
                "10 click events lost (10 in all): [Errno 28]"
            )
        )
        assert errors[0].exc_info is None
        assert recorder.spool_error.startswith("OSError: [Errno 28]")

        # Room again (nothing may read the spool before: its file is /dev/full, endless): the
        # next events are spooled, readable after the torn write; the drain's rotation works.
        spool.active_path.unlink()
        for number in range(100, 110):
            recorder.record(click_event(1, number))
        recorder.flush()
        assert recorder.spooled == 10 and recorder.lost == 100
        assert recorder.spool_error == ""
        assert spool.depth() == 10
        assert recorder.drain() == 0  # the store is still down: kept for later
        assert spool.depth() == 10
        assert any(
            r.getMessage().startswith("click events recorded again (store or spool) after ")
            for r in caplog.records
        )

        # The store back: the spooled events are drained, each once.
        server.start()
        assert recorder.drain() == 10
        assert spool.depth() == 0
        for number in range(100, 110):
            assert client.exists(f"rg:{{c1}}:click:1.event{number:08d}")
        assert not client.exists("rg:{c1}:click:1.event00000000")

        # Lost again in a second outage, and then the store comes back before the spool has
        # room: /readyz and the log must not go on saying events are lost.
        server.stop()
        os.symlink("/dev/full", spool.active_path)
        for number in range(200, 210):
            recorder.record(click_event(1, number))
        recorder.flush()
        assert recorder.lost == 110 and recorder.spool_error
        spool.active_path.unlink()  # (before the drain reads it)
        server.start()
        recorder.drain()
        assert recorder.spool_error == ""
        ends = [r for r in caplog.records if r.getMessage().startswith("click events recorded")]
        assert len(ends) == 2
    finally:
        recorder.close()
        client.close()
        server.stop()


def test_an_outage_leaves_one_spool_file_per_worker_not_one_per_drain_attempt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    client = redis.Redis.from_url(server.url, socket_timeout=1)
    spool = Spool(tmp_path / "spool")
    recorder = EventRecorder(client, spool, flush_after=3600.0, drain_interval=3600.0)
    caplog.set_level(logging.INFO, logger="gateway.recorder")
    try:
        server.stop()
        for attempt in range(10):  # 20 s of an outage: the recorder tries to drain every 2 s
            for number in range(attempt * 3, attempt * 3 + 3):
                recorder.record(click_event(1, number))
            recorder.flush()
            assert recorder.drain() == 0
        assert [p.name for p in spool.directory.iterdir()] == [spool.active_path.name]
        assert spool.depth() == 30

        server.start()
        assert recorder.drain() == 30
        drained = [r.getMessage() for r in caplog.records if r.getMessage().startswith("drained")]
        assert len(drained) == 1 and drained[0].endswith("(30 newly recorded), 0 left")
        assert list(spool.directory.iterdir()) == []
    finally:
        recorder.close()
        client.close()
        server.stop()


def test_the_spool_depth_reads_only_what_was_appended_since_it_last_counted(
    tmp_path: Path,
) -> None:
    """/metrics and /readyz count the spool on every call: after a long outage that read
    gigabytes each time, in a serving worker's thread."""
    spool = Spool(tmp_path / "spool")
    assert spool.depth() == 0
    spool.append([click_event(1, n) for n in range(200)])
    assert spool.depth() == 200
    size = spool.active_path.stat().st_size
    assert spool.bytes_counted == size
    assert spool.depth() == 200 and spool.bytes_counted == size  # nothing new: nothing read
    spool.append([click_event(1, 200)])
    assert spool.depth() == 201
    assert spool.bytes_counted == spool.active_path.stat().st_size
    # Claimed (renamed) and written again: still right, and a deleted file is gone from it.
    claimed = spool.claim()
    spool.append([click_event(1, 201)])
    assert spool.depth() == 202
    for path in claimed:
        path.unlink()
    assert spool.depth() == 1
    spool.close()
