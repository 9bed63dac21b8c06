"""The recorder's flusher writes what a quiet campaign's clicks leave waiting, and leaves young
events to the next clicks, which carry them in their own round trip."""

from __future__ import annotations

import time

from gateway.services import Services
from gateway.store import keys
from tests.events import click_event


def recorded(services: Services, campaign_id: int) -> int:
    counters = services.store.main.hget(keys.campaign_keys(campaign_id).counters, "clicks")
    return int(counters or 0)


def test_young_events_wait_for_a_click_and_old_ones_are_flushed(
    services: Services, campaign: dict[str, object]
) -> None:
    campaign_id = int(campaign["id"])  # type: ignore[call-overload]
    recorder = services.recorder
    for number in range(3):  # fewer than a click carries
        recorder.record(click_event(campaign_id, number))
    assert recorder.flush(waited=60.0) == 0  # waited less than that: left for the next clicks
    assert recorder.pending() == 3 and recorded(services, campaign_id) == 0
    # The flusher thread (started by the first record) writes them once they waited its period.
    deadline = time.monotonic() + 5
    while recorded(services, campaign_id) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorded(services, campaign_id) == 3 and recorder.pending() == 0
    # Everything, now (tests, replay, shutdown).
    recorder.record(click_event(campaign_id, 3))
    assert recorder.flush() == 1 and recorded(services, campaign_id) == 4
