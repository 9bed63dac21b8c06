"""refgate serve keeps its embedded store up: a redis-server that dies is started again from its
AOF; one that is alive but not answering is left alone (a second server on the same files would
corrupt them)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.store.embedded import EmbeddedRedis
from gateway.store.storewatch import EmbeddedStoreWatch


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "data")
    server.ensure_running()
    yield server
    server.stop(force=True)


def server_pid(store: EmbeddedRedis) -> int:
    return int(store.pidfile.read_text().strip())


def test_a_store_that_dies_is_started_again_with_its_data(store: EmbeddedRedis) -> None:
    client = redis.Redis(unix_socket_path=str(store.socket_path))
    client.set("ledger", "intact")
    client.close()
    first = server_pid(store)
    watch = EmbeddedStoreWatch(store, interval=0.2)
    watch.start()
    try:
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not (store.is_running() and watch.restarts == 1):
            assert time.monotonic() < deadline, "the store was not started again"
            time.sleep(0.1)
        assert server_pid(store) != first
        client = redis.Redis(unix_socket_path=str(store.socket_path))
        assert client.get("ledger") == b"intact"  # from the AOF
        client.close()
    finally:
        watch.stop()


def test_a_store_that_hangs_is_not_started_twice(store: EmbeddedRedis) -> None:
    pid = server_pid(store)
    watch = EmbeddedStoreWatch(store, interval=0.2)
    watch.start()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(1.5)  # several checks while the server cannot answer
        assert not store.is_running()
        assert watch.restarts == 0 and server_pid(store) == pid
    finally:
        os.kill(pid, signal.SIGCONT)
        watch.stop()
    assert store.is_running() and server_pid(store) == pid
