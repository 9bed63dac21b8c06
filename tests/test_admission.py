"""Admission control, flood limits and /metrics: overload is answered at once, never queued."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.admission import Admission, set_queue_wait
from gateway.settings import Settings, SettingsError
from gateway.store import keys
from tests.conftest import BROWSER, bearer, make_app, services_of


def test_admission_counts_and_refuses_without_waiting() -> None:
    admission = Admission(click_limit=2, other_limit=1)
    assert admission.enter(admission.other_limit)
    assert not admission.enter(admission.other_limit)  # others are shed first
    assert admission.enter(admission.click_limit)
    assert not admission.enter(admission.click_limit)
    admission.leave()
    admission.leave()
    assert admission.in_flight == 0
    with pytest.raises(ValueError, match="other_limit"):
        Admission(click_limit=1, other_limit=2)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"REFGATE_MAX_IN_FLIGHT": "0"}, "REFGATE_MAX_IN_FLIGHT"),
        ({"REFGATE_MAX_IN_FLIGHT": "many"}, "REFGATE_MAX_IN_FLIGHT"),
        (
            {"REFGATE_MAX_IN_FLIGHT": "4", "REFGATE_MAX_IN_FLIGHT_OTHER": "5"},
            "REFGATE_MAX_IN_FLIGHT_OTHER",
        ),
        ({"REFGATE_RATE_LIMIT_PREFIX": "-1"}, "REFGATE_RATE_LIMIT_PREFIX"),
        ({"REFGATE_RATE_LIMIT_TOKEN": "1.5"}, "REFGATE_RATE_LIMIT_TOKEN"),
        ({"REFGATE_CLICK_LOG": "perhaps"}, "REFGATE_CLICK_LOG"),
        ({"REFGATE_MAX_QUEUE_MS": "0"}, "REFGATE_MAX_QUEUE_MS"),
        ({"REFGATE_GIL_SWITCH_US": "50"}, "REFGATE_GIL_SWITCH_US"),
        ({"REFGATE_GIL_SWITCH_US": "1ms"}, "REFGATE_GIL_SWITCH_US"),
    ],
)
def test_bad_overload_settings_name_the_variable(
    tmp_path: Path, env: dict[str, str], name: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"REFGATE_DATA_DIR": str(tmp_path), **env})
    assert caught.value.name == name


def test_overload_settings_defaults_and_values(tmp_path: Path) -> None:
    settings = Settings.from_env({"REFGATE_DATA_DIR": str(tmp_path)})
    assert (settings.max_in_flight, settings.max_in_flight_other) == (6, 4)
    assert settings.max_queue_wait == 0.03
    settings = Settings.from_env(
        {
            "REFGATE_DATA_DIR": str(tmp_path),
            "REFGATE_MAX_IN_FLIGHT": "2",
            "REFGATE_RATE_LIMIT_PREFIX": "0",
            "REFGATE_RATE_LIMIT_TOKEN": "50",
            "REFGATE_GIL_SWITCH_US": "1000",
        }
    )
    assert settings.gil_switch_interval == 0.001
    assert (settings.max_in_flight, settings.max_in_flight_other) == (2, 2)
    assert (settings.rate_limit_prefix, settings.rate_limit_token) == (0, 50)


def metric(client: FlaskClient, line_start: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    found = [line for line in text.splitlines() if line.startswith(line_start)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in found)


def test_overload_sheds_api_before_clicks_and_never_probes(
    app: Flask, client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    admission = services_of(app).admission
    assert (admission.click_limit, admission.other_limit) == (6, 4)
    token = link["token"]
    admission.in_flight = admission.other_limit  # as if four requests were being served
    try:
        assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
        api = client.get("/api/v1/campaigns", headers=admin)
        assert api.status_code == 503
        assert api.json == {
            "error": "overloaded",
            "message": "refgate is shedding load; retry after a moment",
        }
        assert api.headers["Retry-After"] == "2"
        assert client.get("/s/nothing/qr.png").status_code == 503
        assert client.get("/healthz").status_code == 200

        admission.in_flight = admission.click_limit
        for language in ("zh-CN", "en"):  # the busy page, rendered once per language
            for _ in range(2):
                page = client.get(f"/s/{token}", headers={**BROWSER, "Accept-Language": language})
                assert page.status_code == 503
                assert page.headers["Retry-After"] == "2"
                assert "text/html" in page.headers["Content-Type"]
        english = client.get(f"/s/{token}", headers={**BROWSER, "Accept-Language": "en"})
        shown = english.get_data(as_text=True).replace("&#39;", "'")
        assert "We're very busy right now" in shown
        # A way to load the link again in apps that hide reload (the reader's choice: no timer).
        assert '<a class="button" href="">Try again</a>' in shown
        assert "http-equiv" not in shown and "setTimeout" not in shown
        assert client.get("/readyz").status_code == 200
    finally:
        admission.in_flight = 0
    assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
    assert admission.in_flight == 0  # every admitted request left
    assert metric(client, 'refgate_shed_requests_total{kind="click"}') == 5
    assert metric(client, 'refgate_shed_requests_total{kind="other"}') == 2


def test_requests_that_queued_too_long_are_shed(
    app: Flask, client: FlaskClient, link: dict[str, Any], admin: dict[str, str]
) -> None:
    """The worker (gateway/worker.py) says how long a request waited for a thread."""
    token = link["token"]
    try:
        set_queue_wait(0.02)  # over the API's 15 ms, under the click path's 30 ms
        assert client.get(f"/s/{token}", headers=BROWSER).status_code == 302
        # Its latency counts the wait in the worker's queue: not under 20 ms.
        assert metric(client, 'refgate_click_seconds_bucket{le="0.015"}') == 0
        assert metric(client, 'refgate_click_seconds_bucket{le="+Inf"}') == 1
        assert client.get("/api/v1/campaigns", headers=admin).status_code == 503
        set_queue_wait(0.035)
        shed = client.get(f"/s/{token}", headers=BROWSER)
        assert shed.status_code == 503 and shed.headers["Retry-After"] == "2"
        assert client.get("/readyz").status_code == 200
    finally:
        set_queue_wait(0.0)
    assert client.get("/api/v1/campaigns", headers=admin).status_code == 200
    assert services_of(app).admission.in_flight == 0


@pytest.fixture
def limited_app(tmp_path: Path, store_url: str) -> Iterator[Flask]:
    app = make_app(
        tmp_path / "data",
        store_url,
        REFGATE_RATE_LIMIT_PREFIX="3",
        REFGATE_RATE_LIMIT_TOKEN="5",
    )
    yield app
    services_of(app).close()


def make_link(client: FlaskClient, key: str, referrer: str) -> str:
    if client.get("/api/v1/campaigns/tea", headers=bearer(key)).status_code == 404:
        client.post(
            "/api/v1/campaigns",
            json={"slug": "tea", "name": "Tea", "destination_url": "https://shop.example.com/"},
            headers=bearer(key),
        )
    token: str = client.post(
        "/api/v1/campaigns/tea/links", json={"referrer": referrer}, headers=bearer(key)
    ).json["token"]  # type: ignore[index]
    return token


def test_flood_limits_per_prefix_and_per_link(limited_app: Flask) -> None:
    services = services_of(limited_app)
    key, _ = services.api_keys.create("t", "admin")
    client = limited_app.test_client()
    ann, bob = make_link(client, key, "ann"), make_link(client, key, "bob")

    def click(token: str, address: str) -> int:
        return client.get(
            f"/s/{token}", headers=BROWSER, environ_base={"REMOTE_ADDR": address}
        ).status_code

    # One network (/24) flooding: the fourth click this minute is refused, others are not.
    statuses = [click(ann, f"198.51.100.{n}") for n in range(1, 6)]
    assert [status == 429 for status in statuses] == [False] * 3 + [True] * 2
    assert click(bob, "203.0.113.9") != 429
    # One link flooded from many networks: the sixth click on it this minute is refused.
    # (velocity may earn some a challenge page: scoring goes on below the limits)
    statuses = [click(bob, f"192.0.{n}.1") for n in range(1, 7)]
    assert [status == 429 for status in statuses] == [False] * 4 + [True] * 2
    refused = client.get(f"/s/{bob}", headers=BROWSER, environ_base={"REMOTE_ADDR": "10.1.1.1"})
    assert refused.headers["Retry-After"] == "60"
    assert "请一分钟后再试" in refused.text  # what the page says agrees with Retry-After
    services.recorder.flush()
    events = keys.campaign_keys(services.campaigns.require("tea").id).events
    assert services.store.main.xlen(events) == 8  # refused clicks are not recorded
    assert metric(client, 'refgate_shed_requests_total{kind="prefix"}') == 2
    assert metric(client, 'refgate_shed_requests_total{kind="token"}') == 3
    assert metric(client, "refgate_clicks_total{") == 8


def test_metrics_are_prometheus_text(
    client: FlaskClient, link: dict[str, Any], services: Any
) -> None:
    assert client.get(f"/s/{link['token']}", headers=BROWSER).status_code == 302
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = response.get_data(as_text=True)
    assert 'outcome="redirect"' in text
    assert "refgate_click_seconds_bucket{le=" in text
    assert "refgate_spool_depth 0.0" in text
    assert "refgate_events_spooled_total 0.0" in text
    assert "refgate_events_drained_total 0.0" in text
    assert 'refgate_store_errors_total{where="click"} 0.0' in text
    assert metric(client, "refgate_click_seconds_count") == 1


def test_json_log_lines_carry_the_click_id(
    app: Flask, client: FlaskClient, link: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    from gateway.logs import JsonFormatter

    services_of(app).gateway.log_clicks = True
    with caplog.at_level(logging.INFO, logger="refgate.clicks"):
        response = client.get(f"/s/{link['token']}", headers=BROWSER)
    click_id = response.headers["Location"].rsplit("rg_click=", 1)[1]
    records = [r for r in caplog.records if r.name == "refgate.clicks"]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["click_id"] == click_id
    assert line["msg"] == "click" and line["level"] == "info"
    assert {"campaign", "decision", "outcome", "platform", "scored", "ts", "pid"} <= set(line)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    assert "RuntimeError: boom" in json.loads(JsonFormatter().format(record))["exc"]
