"""Events name their referrer by numeric id; the stream's readers resolve the external ids, one
lookup per batch, and read entries written before that (with the external id) as they are."""

from __future__ import annotations

import time
from typing import Any

import orjson

from detectors.features import FEATURE_NAMES
from gateway.referrer_names import ReferrerNames
from gateway.services import Services
from gateway.store import keys
from gateway.training_data import from_decisions
from tests.events import click_event


def test_external_ids_are_resolved_once_and_old_entries_read_as_they_are(
    services: Services, campaign: dict[str, Any]
) -> None:
    found = services.campaigns.require("milk-tea")
    alice, bob = (
        services.codec.decode(services.links.mint(found, name).token).referrer_id
        for name in ("alice", "bob")
    )
    store = services.store.main
    ck = keys.campaign_keys(found.id)
    now = time.time()
    events = [click_event(found.id, n, referrer_id=(alice, bob)[n % 2], ts=now) for n in range(6)]
    assert services.recorder.write(events) == 6
    # An entry from before numeric ids, and one whose id the campaign never issued.
    old = click_event(found.id, 6, referrer_id=alice, ts=now)
    store.xadd(ck.events, {"e": old.to_json(), "r": "carol"})
    store.xadd(ck.events, {"e": click_event(found.id, 7, referrer_id=999, ts=now).to_json()})
    entries = store.xrange(ck.events)
    assert all(b"r" not in fields for _, fields in entries[:6])
    names = ReferrerNames(store, found.id)
    resolved = names.events(entries)
    assert [referrer for _, referrer in resolved] == [
        "alice", "bob", "alice", "bob", "alice", "bob", "carol", ""
    ]  # fmt: skip
    assert [event["id"] for event, _ in resolved] == [e.id for e in [*events, old]] + [
        f"{found.id:x}.event00000007"
    ]
    # Known ids are not looked up again: with the mapping gone from the store, still resolved.
    store.delete(ck.referrer_external)
    assert [r for _, r in names.events(entries[:2])] == ["alice", "bob"]


def test_training_from_decisions_groups_clicks_by_external_referrer(
    services: Services, campaign: dict[str, Any]
) -> None:
    found = services.campaigns.require("milk-tea")
    referrer_id = services.codec.decode(services.links.mint(found, "farmer").token).referrer_id
    features = [0.5] * len(FEATURE_NAMES)
    events = [
        click_event(found.id, n, referrer_id=referrer_id, features=features, score=0.9)
        for n in range(3)
    ]
    services.recorder.write(events)
    services.store.main.xadd(
        keys.campaign_keys(found.id).decisions,
        {"d": orjson.dumps({"kind": "referrer", "subject": "farmer", "decision": "fraud"})},
    )
    data = from_decisions(services.store.main, [found.id])
    assert data.labels == [1, 1, 1]
    assert data.groups == [f"{found.id}/farmer"] * 3
