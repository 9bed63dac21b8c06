"""The click path's own connections: one per thread, never capped by a pool's count."""

from __future__ import annotations

import threading

from gateway.clickcall import click_call
from gateway.store.clickstore import ClickStore
from tests.conftest import SERVER_URL, _flush


def test_a_thread_per_request_server_never_runs_out_of_connections() -> None:
    """werkzeug's threaded server starts a thread per request; redis-py's pool counts every
    connection it ever made (100 by default) and then refuses: every click would go unscored."""
    threads = 250  # more than the 100 connections redis-py's pool makes by default
    _flush(SERVER_URL)
    store = ClickStore(SERVER_URL, timeout=2.0)
    keys, args = click_call(1, None, [], 3600, "0-0")
    replies: list[list[object]] = []
    errors: list[BaseException] = []

    def one_request() -> None:
        try:
            replies.append(store.call(keys, args))
        except BaseException as exc:
            errors.append(exc)

    for _ in range(threads):  # one after another, as requests on a quiet server
        thread = threading.Thread(target=one_request)
        thread.start()
        thread.join()
    assert errors == []
    assert len(replies) == threads and replies[0][:3] == [0, 0, 0]
