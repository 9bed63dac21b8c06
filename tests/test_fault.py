"""The store goes away under traffic: every valid click still redirects, no click event is lost
and none is recorded twice.

refgate runs in a real HTTP server (werkzeug's, in a thread) against a private redis-server with
AOF (tests/redisproc.py). A client thread sends valid clicks, from many addresses over many links,
as fast as one connection allows, while the test stops that redis-server and starts it again.
Afterwards, once the spool has drained, the click events in the store are exactly the clicks that
were redirected: the same click ids, each once.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from gateway.events import ClickEvent
from gateway.store import keys
from tests.conftest import BROWSER, bearer, make_app, services_of
from tests.redisproc import RedisProcess

pytestmark = pytest.mark.slow

SHARERS = 200


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path / "redis")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def served(tmp_path: Path, redis_process: RedisProcess) -> Iterator[tuple[Flask, str]]:
    app = make_app(
        tmp_path / "data",
        redis_process.url,
        # Clicks come through a proxy from many addresses, as in production.
        REFGATE_TRUSTED_PROXIES="1",
    )
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="refgate-http", daemon=True)
    thread.start()
    yield app, f"127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    services_of(app).close()


class Clicker(threading.Thread):
    """Sends valid clicks until stopped; keeps every answer's status and click id."""

    def __init__(self, address: str, tokens: list[str]) -> None:
        super().__init__(name="clicker", daemon=True)
        self.address = address
        self.tokens = tokens
        self.stopping = threading.Event()
        self.answers: list[tuple[int, str | None]] = []
        self.failures: list[str] = []
        self.rng = random.Random(7)

    def run(self) -> None:
        while not self.stopping.is_set():
            token = self.rng.choice(self.tokens)
            address = ".".join(str(self.rng.randint(1, 223)) for _ in range(4))
            connection = http.client.HTTPConnection(self.address, timeout=10)
            try:
                connection.request(
                    "GET", f"/s/{token}", headers={**BROWSER, "X-Forwarded-For": address}
                )
                response = connection.getresponse()
                response.read()
            except OSError as exc:  # a click the gateway did not answer at all
                self.failures.append(repr(exc))
                continue
            finally:
                connection.close()
            location = response.getheader("Location")
            click_id = parse_qs(urlsplit(location).query)["rg_click"][0] if location else None
            self.answers.append((response.status, click_id))
            time.sleep(0.002)


def wait_for(condition: Any, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_a_store_restart_under_traffic_loses_no_click_and_records_none_twice(
    served: tuple[Flask, str], redis_process: RedisProcess
) -> None:
    app, address = served
    services = services_of(app)
    client = app.test_client()
    key, _ = services.api_keys.create("t", "admin")
    assert (
        client.post(
            "/api/v1/campaigns",
            json={"slug": "tea", "name": "Tea", "destination_url": "https://shop.example.com/"},
            headers=bearer(key),
        ).status_code
        == 201
    )
    tokens = [
        client.post(
            "/api/v1/campaigns/tea/links", json={"referrer": f"u{n}"}, headers=bearer(key)
        ).json["token"]  # type: ignore[index]
        for n in range(SHARERS)
    ]
    clicker = Clicker(address, tokens)
    clicker.start()
    try:
        wait_for(lambda: len(clicker.answers) >= 100, "clicks before the outage")
        redis_process.stop()
        during = len(clicker.answers)
        wait_for(lambda: services.recorder.spooled > 0, "events spooled in the outage")
        wait_for(lambda: len(clicker.answers) >= during + 100, "clicks in the outage")
        in_outage = len(clicker.answers) - during
        redis_process.start()
        after = len(clicker.answers)
        wait_for(lambda: len(clicker.answers) >= after + 100, "clicks after the outage")
        wait_for(lambda: services.gateway.breaker.closed, "the breaker to close")
    finally:
        clicker.stopping.set()
        clicker.join(timeout=30)

    assert clicker.failures == []
    statuses = {status for status, _ in clicker.answers}
    assert statuses == {302}, f"every valid click redirects, got {statuses}"
    redirected = [click_id for _, click_id in clicker.answers]
    assert in_outage >= 100 and len(redirected) >= 300

    # Recovery: waiting events written, the spool drained by the recorder's own thread.
    recorder = services.recorder
    wait_for(lambda: recorder.pending() == 0 and recorder.spool.depth() == 0, "the drain")
    assert recorder.spooled > 0 and recorder.drained >= recorder.spooled

    campaign_id = services.campaigns.require("tea").id
    ck = keys.campaign_keys(campaign_id)
    recorded = [ClickEvent.from_json(f[b"e"]) for _, f in services.store.main.xrange(ck.events)]
    recorded_ids = [event.id for event in recorded]
    assert len(recorded_ids) == len(set(recorded_ids)), "a click recorded twice"
    assert sorted(recorded_ids) == sorted(redirected), "recorded clicks != redirected clicks"
    counters = services.store.main.hgetall(ck.counters)
    assert int(counters[b"clicks"]) == len(redirected)
    # Clicks served without the store are marked: no history, no credit.
    unscored = [event for event in recorded if not event.scored]
    assert unscored and all(event.decision == "deny_credit" for event in unscored)
    assert int(counters[b"clicks:unscored"]) == len(unscored)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f"refgate_events_spooled_total {float(recorder.spooled)}" in metrics
    assert "refgate_spool_depth 0.0" in metrics
