"""refgate serve keeps its embedded store up: a redis-server that dies is started again from its
AOF; one that is alive but not answering is left alone (a second server on the same files would
corrupt them)."""

from __future__ import annotations

import os
import signal
import time

import redis

from gateway.store.embedded import EmbeddedRedis
from gateway.store.storewatch import EmbeddedStoreWatch


def server_pid(store: EmbeddedRedis) -> int:
    return int(store.pidfile.read_text().strip())


def test_a_store_that_dies_is_started_again_with_its_data(own_store: EmbeddedRedis) -> None:
    client = redis.Redis(unix_socket_path=str(own_store.socket_path))
    client.set("ledger", "intact")
    client.close()
    first = server_pid(own_store)
    watch = EmbeddedStoreWatch(own_store, interval=0.2)
    watch.start()
    try:
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not (own_store.is_running() and watch.restarts == 1):
            assert time.monotonic() < deadline, "the store was not started again"
            time.sleep(0.1)
        assert server_pid(own_store) != first
        client = redis.Redis(unix_socket_path=str(own_store.socket_path))
        assert client.get("ledger") == b"intact"  # from the AOF
        client.close()
    finally:
        watch.stop()


def test_a_store_that_hangs_is_not_started_twice(own_store: EmbeddedRedis) -> None:
    pid = server_pid(own_store)
    watch = EmbeddedStoreWatch(own_store, interval=0.2)
    watch.start()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(1.5)  # several checks while the server cannot answer
        assert not own_store.is_running()
        assert watch.restarts == 0 and server_pid(own_store) == pid
    finally:
        os.kill(pid, signal.SIGCONT)
        watch.stop()
    assert own_store.is_running() and server_pid(own_store) == pid
