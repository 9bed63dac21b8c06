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


def test_a_link_opened_mostly_from_servers_flags_its_sharer_however_each_click_scored(
    services: Services, campaign: dict[str, object]
) -> None:
    # A bot copying phones' agents from cloud servers: the model scores each of its clicks low
    # (allowed, 0.2), so no suspicious-click flag; 25 of its sharer's 55 clicks came from servers,
    # counted across two runs of the flagger. A popular link with a link checker's few fetches
    # among people's clicks (5 of 100), and a sharer with a handful of server clicks, are not.
    found = services.campaigns.require("milk-tea")
    sharers = ("bots", "popular", "few")
    links = {s: services.links.mint(found, s) for s in sharers}
    ids = {s: services.codec.decode(link.token).referrer_id for s, link in links.items()}
    server = ["network: opened from a datacenter network"]
    now = time.time()
    numbers = iter(range(1_000))

    def record(sharer: str, count: int, reasons: list[str]) -> None:
        events = [
            click_event(
                found.id,
                next(numbers),
                referrer_id=ids[sharer],
                ts=now,
                score=0.2 if reasons else 0.02,
                reasons=reasons,
            )
            for _ in range(count)
        ]
        assert services.recorder.write(events) == count

    record("bots", 12, server)
    record("bots", 30, [])
    record("popular", 5, server)
    record("popular", 95, [])
    record("few", 6, server)
    services.flagger.run_campaign(found, now)
    assert services.flags.find([found.id])[1] == 0  # 12 server clicks so far: not yet
    record("bots", 13, server)
    services.flagger.run_campaign(found, now)
    flags, total = services.flags.find([found.id])
    assert total == 1
    flag = flags[0]
    assert (flag.kind, flag.subject) == ("referrer", "bots")
    assert "25 of 55 clicks came from datacenter networks" in flag.reasons[0]
    assert flag.score >= 0.7
