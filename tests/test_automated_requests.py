"""What the preview path counts for the flagger: requests from automation agents on a sharer's
link, counted in the worker and written by its flusher (the flagging itself is in
test_referrer_feedback.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from detectors.flagging import AUTOMATED_MIN
from gateway.replay import replay
from gateway.services import Services
from gateway.store import keys
from tests.conftest import BROWSER
from tests.test_replay import T0, honest_and_farm_log, read_jsonl, write_log

SCRIPT = {"User-Agent": "python-requests/2.32.3"}


def counted(services: Services, campaign_id: int) -> dict[int, int]:
    stored = services.store.main.hgetall(keys.campaign_keys(campaign_id).automated)
    return {int(k): int(v) for k, v in stored.items()}


def written(services: Services, campaign_id: int, expected: dict[int, int]) -> bool:
    """Whether the counts reach ``expected`` within a second: an explicit flush finds nothing
    to write when the recorder's own flusher took the counts a moment before and is writing
    them."""
    deadline = time.monotonic() + 1.0
    while counted(services, campaign_id) != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_scripts_and_agentless_requests_count_heads_unfurlers_and_people_do_not(
    client: FlaskClient, services: Services, link: dict[str, Any]
) -> None:
    path = f"/s/{link['token']}"
    for headers in (SCRIPT, SCRIPT, {"User-Agent": ""}):
        assert client.get(path, headers=headers).status_code == 200  # the preview
    assert client.get(path, headers={"User-Agent": "facebookexternalhit/1.1"}).status_code == 200
    assert client.head(path, headers=SCRIPT).status_code == 200
    assert client.get(path, headers=BROWSER).status_code == 302
    campaign = services.campaigns.require("milk-tea")
    referrer_id = services.codec.decode(link["token"]).referrer_id
    services.recorder.flush()
    assert written(services, campaign.id, {referrer_id: 3})
    # The person's click is the only event; previews never are.
    assert services.store.main.xlen(keys.campaign_keys(campaign.id).events) == 1
    services.recorder.flush()  # nothing new: nothing added twice
    assert counted(services, campaign.id) == {referrer_id: 3}


def test_the_flusher_writes_counts_once_a_second_and_starts_for_previews_alone(
    services: Services, campaign: dict[str, Any]
) -> None:
    found = services.campaigns.require("milk-tea")
    recorder = services.recorder
    recorder.note_automated(found.id, 7)
    # A worker that has served only previews runs its flusher all the same.
    assert recorder._thread is not None and recorder._thread_pid == os.getpid()
    recorder.flush(waited=0.05)  # the flusher's call: its first write goes at once
    assert counted(services, found.id) == {7: 1}
    recorder.note_automated(found.id, 7)
    recorder.flush(waited=0.05)  # within the second: held back
    assert counted(services, found.id) == {7: 1}
    recorder.flush()  # an explicit flush writes what waits
    assert counted(services, found.id) == {7: 2}


def test_a_store_outage_loses_the_counts_not_the_requests(
    services: Services, campaign: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    found = services.campaigns.require("milk-tea")
    recorder = services.recorder
    working = recorder._redis
    recorder._redis = redis.Redis(port=1, socket_connect_timeout=0.2)  # nothing listens there
    try:
        recorder.note_automated(found.id, 9)
        recorder.flush()  # logs, counts the store error, raises nothing
    finally:
        recorder._redis = working
    assert "automated requests" in caplog.text
    assert (
        'refgate_store_errors_total{where="automated"} 1.0'
        in services.metrics.render(lambda: 0)[0].decode()
    )
    recorder.flush()
    assert counted(services, found.id) == {}


def test_replay_flags_a_sharer_whose_link_a_script_hammers(tmp_path: Path) -> None:
    """Replay plays previews through the same click path, so the flagger sees them there too."""
    lines, _ = honest_and_farm_log()
    script = [
        {
            "type": "click", "id": f"s{n}", "ts": T0 + 600 + 20 * n, "campaign": "milk-tea",
            "referrer": "scripted", "ip": f"3.5.9.{n % 200 + 1}", "ua": "Go-http-client/2.0",
            "headers": {"referer": ""}, "visitor_id": None,
        }
        for n in range(AUTOMATED_MIN + 10)
    ]  # fmt: skip
    lines = sorted([*lines, *script], key=lambda line: line["ts"])
    summary = replay(write_log(tmp_path / "log.jsonl", lines), tmp_path / "out")
    assert summary.previews == len(script)
    flags = read_jsonl(tmp_path / "out" / "flags.jsonl")
    scripted = [f for f in flags if f["kind"] == "referrer" and f["subject"] == "scripted"]
    assert len(scripted) == 1
    assert "came from scripts or headless browsers" in scripted[0]["reasons"][0]
