"""The click path without its store: redirects go on, events spool, then drain exactly once."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.services import Services
from gateway.store import keys
from gateway.store.connection import RECORD_TIMEOUT, SLOW_TIMEOUT
from gateway.store.embedded import EmbeddedRedis
from tests.conftest import BROWSER, bearer, make_app, services_of


@pytest.fixture
def outage_app(tmp_path: Path, own_store: EmbeddedRedis) -> Iterator[Flask]:
    app = make_app(tmp_path / "data", own_store.url())
    yield app
    services_of(app).close()


def campaign_and_link(app: Flask) -> tuple[Services, FlaskClient, str, str]:
    """An admin key, campaign ``tea`` and ann's link on it: (services, client, key, token)."""
    services = services_of(app)
    key, _ = services.api_keys.create("t", "admin")
    client = app.test_client()
    client.post(
        "/api/v1/campaigns",
        json={"slug": "tea", "name": "Tea", "destination_url": "https://shop.example.com/"},
        headers=bearer(key),
    )
    token = client.post(
        "/api/v1/campaigns/tea/links", json={"referrer": "ann"}, headers=bearer(key)
    ).json["token"]
    return services, client, key, token


def test_clicks_redirect_during_an_outage_and_are_recorded_once_after(
    outage_app: Flask, own_store: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    services, client, key, token = campaign_and_link(outage_app)
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302  # warms the campaign cache
    services.recorder.flush()

    own_store.stop(force=True)
    assert not own_store.is_running()
    for _ in range(5):
        response = client.get(f"/s/{token}", headers=BROWSER)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("https://shop.example.com/?rg_click=")
    services.recorder.flush()
    assert services.recorder.spooled == 5
    assert services.recorder.spool.depth() == 5
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["status"] == "degraded"  # type: ignore[index]
    assert ready.json["spool_depth"] == 5  # type: ignore[index]
    # Money fails closed, with a clear JSON answer.
    for response in (
        client.post(
            "/api/v1/conversions", json={"click_id": "1.x", "user": "u"}, headers=bearer(key)
        ),
        client.get("/api/v1/rewards?campaign=tea", headers=bearer(key)),
    ):
        assert response.status_code == 503
        assert response.json["error"] == "store_unavailable"  # type: ignore[index]
        assert response.headers["Retry-After"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "refgate_events_spooled_total 5.0" in metrics
    assert "refgate_clicks_unscored_total 5.0" in metrics
    assert "refgate_spool_depth 5.0" in metrics
    assert 'refgate_store_errors_total{where="api"} 2.0' in metrics

    own_store.ensure_running()
    services.gateway.breaker._open_until = 0.0
    with caplog.at_level(logging.INFO, logger="gateway.recorder"):
        assert services.recorder.drain() == 5
    assert services.recorder.spool.depth() == 0
    # The log says the spool emptied (the warnings said when it filled).
    drained = [r.getMessage() for r in caplog.records if r.getMessage().startswith("drained ")]
    assert len(drained) == 1
    assert drained[0].startswith("drained 5 spooled click events from ")
    assert drained[0].endswith("(5 newly recorded), 0 left")
    # Delivering the same events again (a crash between delivery and unlink) adds nothing.
    ck = keys.campaign_keys(1)
    recorded = services.store.main.xrange(ck.events)
    assert len(recorded) == 6
    import json

    from gateway.events import ClickEvent

    replay = [ClickEvent.from_json(fields[b"e"]) for _, fields in recorded]
    assert services.recorder.write(replay) == 0
    counters = services.store.main.hgetall(ck.counters)
    assert counters[b"clicks"] == b"6"
    assert counters[b"clicks:unscored"] == b"5"
    unscored = [json.loads(fields[b"e"]) for _, fields in recorded][1:]
    assert all(not e["scored"] and e["decision"] == "deny_credit" for e in unscored)
    assert client.get("/readyz").status_code == 200
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "refgate_events_drained_total 5.0" in metrics
    assert "refgate_spool_depth 0.0" in metrics


def test_a_hung_store_spools_events_within_seconds(
    outage_app: Flask, own_store: EmbeddedRedis
) -> None:
    """A store that hangs (a stopped process, a stalled disk) rather than refusing: the events
    go to the spool within the recorder's few seconds, not after the slow client's retries,
    so a worker that dies meanwhile loses nothing; once the store answers they are recorded
    once."""
    services, client, _, token = campaign_and_link(outage_app)
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
    services.recorder.flush()
    pid = int(own_store.pidfile.read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(3):
            assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
        started = time.monotonic()
        services.recorder.flush()
        assert time.monotonic() - started < RECORD_TIMEOUT + 2
        assert services.recorder.spooled == 3 and services.recorder.spool.depth() == 3
    finally:
        os.kill(pid, signal.SIGCONT)
    services.gateway.breaker._open_until = 0.0
    # The write that timed out was still in the server's socket: it ran when the server woke,
    # so the drain may find the events recorded already. Either way each counts once.
    services.recorder.drain()
    assert services.recorder.drained == 3 and services.recorder.spool.depth() == 0
    ck = keys.campaign_keys(1)
    assert services.store.main.hget(ck.counters, "clicks") == b"4"
    assert services.store.main.xlen(ck.events) == 4


def test_cold_worker_during_an_outage_answers_busy(
    tmp_path: Path, own_store: EmbeddedRedis
) -> None:
    """A worker that never loaded the campaign, on a machine none of whose workers did either:
    nothing to send people on with, so the busy page (the store's outage is all it knows)."""
    app = make_app(tmp_path / "data", own_store.url())
    _, _, _, token = campaign_and_link(app)
    cold = make_app(tmp_path / "other-machine", own_store.url())
    own_store.stop(force=True)
    try:
        response = cold.test_client().get(f"/s/{token}", headers=BROWSER)
        assert response.status_code == 503
        assert response.headers["Retry-After"]
    finally:
        services_of(app).close()
        services_of(cold).close()


def test_a_worker_started_during_an_outage_redirects_with_what_its_machine_kept(
    tmp_path: Path, own_store: EmbeddedRedis
) -> None:
    """gunicorn replaces a worker (recycled, crashed) or the server restarts while the store is
    down: the campaigns this machine's workers loaded are on its disk, so the new worker sends
    people on (unscored, spooled, no credit) instead of answering busy; a campaign changed
    since is kept at its new version; one this machine never loaded is still busy."""
    data = tmp_path / "data"
    warm = make_app(data, own_store.url())
    services, client, key, token = campaign_and_link(warm)
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302  # loads it here
    renamed = client.patch(
        "/api/v1/campaigns/tea", json={"name": "Tea, renamed"}, headers=bearer(key)
    )
    assert renamed.status_code == 200
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302  # reloads it
    kept = services.campaigns.disk
    assert kept is not None and kept.directory == data / "campaigns"
    campaign_id = services.campaigns.require("tea").id
    version, document = kept.load(campaign_id) or (0, b"")
    assert b"Tea, renamed" in document
    assert version == services.campaigns.cached_version(campaign_id) > 0
    assert (kept.directory.stat().st_mode & 0o777) == 0o700
    # Another campaign, created but never clicked on this machine.
    client.post(
        "/api/v1/campaigns",
        json={"slug": "coffee", "name": "Coffee", "destination_url": "https://shop.example.com/"},
        headers=bearer(key),
    )
    coffee = client.post(
        "/api/v1/campaigns/coffee/links", json={"referrer": "ann"}, headers=bearer(key)
    ).json["token"]
    services.recorder.flush()

    own_store.stop(force=True)
    started_in_outage = make_app(data, own_store.url())
    try:
        new_worker = started_in_outage.test_client()
        for _ in range(3):
            response = new_worker.get(f"/s/{token}", headers=BROWSER)
            assert response.status_code == 302
            assert response.headers["Location"].startswith("https://shop.example.com/?rg_click=")
        busy = new_worker.get(f"/s/{coffee}", headers=BROWSER)
        assert busy.status_code == 503 and busy.headers["Retry-After"]
        recorder = services_of(started_in_outage).recorder
        recorder.flush()
        assert recorder.spooled == 3  # recorded later, unscored: no credit
        # A kept file that does not read (damaged, or written by a refgate whose campaigns had
        # other fields) is no campaign: the busy page, never an error page.
        (kept.directory / f"{campaign_id}.json").write_bytes(b"7\n{not json")
        damaged = make_app(data, own_store.url())
        try:
            response = damaged.test_client().get(f"/s/{token}", headers=BROWSER)
            assert response.status_code == 503 and response.headers["Retry-After"]
        finally:
            services_of(damaged).close()
    finally:
        services_of(started_in_outage).close()
        services_of(warm).close()


def test_spool_survives_a_torn_last_line(tmp_path: Path, own_store: EmbeddedRedis) -> None:
    app = make_app(tmp_path / "data", own_store.url())
    services = services_of(app)
    try:
        spool_dir = services.recorder.spool.directory
        (spool_dir / "active-999999999.jsonl").write_text('{"id": "broken')
        assert services.recorder.drain() == 0
        assert list(spool_dir.glob("*.jsonl")) == []
    finally:
        services.close()


def test_the_console_answers_a_clear_503_when_the_store_hangs(
    outage_app: Flask, own_store: EmbeddedRedis
) -> None:
    """A signed-in page whose store hangs: within the slow client's one timeout (no retries of
    a time-out), a 503 page saying the store is unavailable and that nothing changed, without
    the menu (who is signed in is read from the store); the page works again once it answers."""
    from tests.console_helpers import add_staff, login

    services = services_of(outage_app)
    add_staff(services)
    client = outage_app.test_client()
    login(client, "admin")
    assert client.get("/console/campaigns").status_code == 200
    pid = int(own_store.pidfile.read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        page = client.get("/console/campaigns", headers={"Accept-Language": "en"})
        assert time.monotonic() - started < SLOW_TIMEOUT + 2
    finally:
        os.kill(pid, signal.SIGCONT)
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "The store is unavailable" in page.text and "nothing was changed" in page.text
    assert "Sign out" not in page.text
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'refgate_store_errors_total{where="console"} 1.0' in metrics
    assert client.get("/console/campaigns").status_code == 200


def test_a_challenge_answer_during_an_outage_answers_busy(
    outage_app: Flask, own_store: EmbeddedRedis
) -> None:
    """Not a 500 after the store's timeout: the busy page, as a click gets."""
    _, client, _, token = campaign_and_link(outage_app)
    own_store.stop(force=True)
    response = client.post(f"/s/{token}/go", data={"c": "x"})
    assert response.status_code == 503
    assert response.headers["Retry-After"]


def test_the_click_path_logs_an_outage_when_it_starts_and_ends_not_per_probe(
    outage_app: Flask, own_store: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker probes a store that is down once a second (more often with clicks in flight):
    at 3 a.m. a warning per probe per worker buried the start and the end of the outage."""
    services, client, _key, token = campaign_and_link(outage_app)
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
    services.recorder.flush()
    # Every click tries the store (no cooldown): what a busy worker does over a minute or two.
    services.gateway.breaker.cooldown = 0.0
    caplog.set_level(logging.INFO, logger="gateway.clickpath")

    own_store.stop(force=True)
    for _ in range(20):
        assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
    lines = [r for r in caplog.records if r.name == "gateway.clickpath"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.WARNING
    assert (
        lines[0]
        .getMessage()
        .startswith("store unavailable on the click path, clicks served without it (no credit): ")
    )
    assert lines[0].click_id  # type: ignore[attr-defined]  # the first click it failed
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'refgate_store_errors_total{where="click"} 20.0' in metrics  # each one counted

    own_store.ensure_running()
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
    lines = [r for r in caplog.records if r.name == "gateway.clickpath"]
    assert len(lines) == 2, [r.getMessage() for r in lines]
    assert lines[1].levelno == logging.INFO
    assert lines[1].getMessage().startswith("store answering the click path again after ")
    assert lines[1].getMessage().endswith("(20 failed tries)")


def test_one_failed_round_trip_does_not_open_the_breaker_a_second_does(
    outage_app: Flask, own_store: EmbeddedRedis
) -> None:
    """A stall of the store fails the clicks in flight; the next click tries the store again
    and is scored when it answers. Opening the breaker on the first failure left a second of
    clicks unscored (never credited) after a stall of a quarter of one. A store that stays down
    opens it at the second failure: the clicks after that do not try it."""
    services, client, _key, token = campaign_and_link(outage_app)
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
    services.recorder.flush()

    own_store.stop(force=True)
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302  # unscored
    own_store.ensure_running()
    assert services.gateway.breaker.closed
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302  # scored again
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "refgate_clicks_unscored_total 1.0" in metrics
    assert 'refgate_store_errors_total{where="click"} 1.0' in metrics

    own_store.stop(force=True)
    for _ in range(4):
        assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
    assert not services.gateway.breaker.closed
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "refgate_clicks_unscored_total 5.0" in metrics
    # Two tries: the first failure, then a click sent after it; the last two skip the store.
    assert 'refgate_store_errors_total{where="click"} 3.0' in metrics


def test_the_breaker_opens_on_a_failure_of_a_call_sent_after_a_failure() -> None:
    from gateway.clickpath import Breaker

    breaker = Breaker(cooldown=60.0)
    before = time.monotonic()
    breaker.failed(sent=before)  # the first failure of a stall
    breaker.failed(sent=before)  # another call in flight when it stalled
    assert breaker.closed
    breaker.failed(sent=time.monotonic())  # sent after the first failure: still failing
    assert not breaker.closed

    breaker.reset()
    breaker.failed(sent=time.monotonic())
    breaker.succeeded()  # the store answered: the failure is forgotten
    breaker.failed(sent=time.monotonic())
    assert breaker.closed


def test_two_drains_in_one_process_deliver_each_spooled_event_once(
    outage_app: Flask, own_store: EmbeddedRedis
) -> None:
    """The recorder's thread and a request may drain at once: the files a process claimed are
    listed to each of its drains, so both delivered them (counted twice), or one found a file
    the other had just finished and took the store for down."""
    import threading

    services, client, _key, token = campaign_and_link(outage_app)
    services.recorder._drain_interval = 1e9  # no drain by the recorder's thread: the test's two
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
    services.recorder.flush()
    own_store.stop(force=True)
    for _ in range(3):
        assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
    services.recorder.flush()
    assert services.recorder.spool.depth() == 3
    own_store.ensure_running()
    services.gateway.breaker.reset()

    recorder = services.recorder
    write, entered, gate = recorder.write, threading.Event(), threading.Event()

    def slow_first_write(batch: list[Any]) -> int:
        if not entered.is_set():
            entered.set()
            gate.wait(1.0)  # the first drain is mid-delivery while the second one runs
        return write(batch)

    recorder.write = slow_first_write  # type: ignore[method-assign]
    first = threading.Thread(target=recorder.drain)
    first.start()
    assert entered.wait(5.0)
    recorder.drain()
    gate.set()
    first.join(5.0)
    assert recorder.drained == 3 and recorder.spool.depth() == 0
    assert recorder.store_ok


def test_a_campaign_load_that_fails_once_does_not_open_the_breaker_either(
    outage_app: Flask, own_store: EmbeddedRedis
) -> None:
    """Every store read of the click path goes by the same rule: a campaign's first load (a
    worker that had not seen it) failing once is noted; a second failure opens the breaker."""
    services, client, _key, token = campaign_and_link(outage_app)
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
    gateway = services.gateway
    own_store.stop(force=True)
    assert gateway._load(1) is not None  # the view this machine kept
    assert gateway.breaker.closed
    assert gateway._load(1) is not None
    assert not gateway.breaker.closed
