"""The flagger reads the event stream in short reads, hands several over at once and writes the
tallies in chunks: every click counts exactly once however the reads, hand-overs and chunks fall."""

from __future__ import annotations

import time

import pytest

from gateway import flagger
from gateway.services import Services
from gateway.store import keys
from tests.events import click_event

SHARERS = 23


def test_every_click_is_tallied_once_across_reads_hand_overs_and_chunks(
    services: Services, campaign: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small reads, hand-overs and chunks, so that a few hundred clicks cross every boundary.
    monkeypatch.setattr(flagger, "BATCH", 17)
    monkeypatch.setattr(flagger, "READS", 3)
    monkeypatch.setattr(flagger, "TALLY_CHUNK", 5)
    found = services.campaigns.require("milk-tea")
    links = [services.links.mint(found, f"sharer-{n}") for n in range(SHARERS)]
    referrer_ids = [services.codec.decode(link.token).referrer_id for link in links]
    now = time.time()
    expected = {f"sharer-{n}": 0 for n in range(SHARERS)}

    def record(first: int, count: int) -> None:
        events = []
        for number in range(first, first + count):
            sharer = (number * 7) % SHARERS  # sharers interleaved, as real clicks come
            expected[f"sharer-{sharer}"] += 1
            events.append(click_event(found.id, number, referrer_id=referrer_ids[sharer], ts=now))
        assert services.recorder.write(events) == count

    def tallied() -> dict[str, int]:
        ck = keys.campaign_keys(found.id)
        store = services.store.main
        return {
            sharer: int(store.hget(ck.referrer_tally(sharer), "clicks") or 0) for sharer in expected
        }

    record(0, 301)
    services.flagger.run_campaign(found, now)
    assert tallied() == expected
    services.flagger.run_campaign(found, now)  # nothing new: nothing counted twice
    assert tallied() == expected
    record(301, 52)
    services.flagger.run_campaign(found, now)
    assert tallied() == expected and sum(expected.values()) == 353
