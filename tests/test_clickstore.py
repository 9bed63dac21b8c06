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


def test_the_click_path_names_history_keys_as_the_key_module_does() -> None:
    """history_keys builds the names by hand for speed; they must stay the ones keys.py defines
    (the tree watch and the sharer's join write some of them)."""
    from detectors.base import ClickInput
    from gateway.clickcall import history_keys
    from gateway.store import keys

    ck = keys.campaign_keys(7)
    ts = 1_770_552_000.5
    click = ClickInput(
        ts=ts,
        campaign_id=7,
        referrer_id=42,
        ip_hash="ab" * 10,
        prefix="203.0.113.0/24",
        ua="x",
        accept_language="zh-CN",
        referer="",
        visitor_id="v" * 22,
        new_visitor=False,
    )
    hour, day = int(ts) // 3600, int(ts) // 86400
    assert history_keys(ck, click) == [
        ck.click_history(hour),
        ck.click_history(hour - 1),
        ck.referrer_networks_today(42, day),
        ck.sharer_own(42),
        ck.referrer_risk,
    ]
