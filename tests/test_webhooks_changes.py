"""Changing a webhook endpoint: its URL, events and campaigns, checked as at registration and
audited; paging its delivery log."""

from __future__ import annotations

import time
from typing import Any

from flask.testing import FlaskClient

from gateway.services import Services
from tests.conftest import bearer
from tests.test_webhooks import (  # noqa: F401 - fixtures: loopback receivers allowed
    Receiver,
    app,
    convert,
    receiver,
    register,
)


def test_a_changed_url_and_events_are_checked_as_at_registration(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    hook = register(client, keys["admin"], receiver, "/old", events=["conversion.created"])
    path = f"/api/v1/webhooks/{hook['id']}"
    marketing = bearer(keys["marketing"])
    stored = services.webhooks.require(hook["id"])
    cases = [
        ({}, "body"),
        ({"url": None}, "url"),
        ({"disabled": None}, "disabled"),
        ({"events": None}, "events"),
        ({"url": "ftp://hooks.example.com/"}, "url"),
        ({"url": "https://user:pw@hooks.example.com/"}, "url"),
        ({"url": "https://hooks.example.com/#x"}, "url"),
        ({"url": "https://hooks.example.com:99999/"}, "url"),
        ({"url": "https:///nohost"}, "url"),
        ({"url": "http://exa mple.com/"}, "url"),
        ({"url": 7}, "url"),
        ({"url": " "}, "url"),
        ({"url": "\t\n"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["reward.spent"]}, "events.0"),
        ({"campaigns": ["no-such-campaign"]}, "campaigns"),
        ({"campaigns": ["Bad Slug"]}, "campaigns.0"),
        ({"secret": "mine"}, "secret"),
        # Every problem at once, as a registration: the URL's beside the others'.
        ({"url": "ftp://x.example.com/", "events": []}, "url"),
        ({"url": "ftp://x.example.com/", "events": []}, "events"),
    ]
    for body, field in cases:
        response = client.patch(path, json=body, headers=marketing)
        assert response.status_code == 400, (body, response.json)
        assert response.json["error"] == "validation_failed"
        assert field in response.json["fields"], (body, response.json)
    both = client.patch(path, json={"campaigns": ["nope-a", "nope-b"]}, headers=marketing)
    assert both.json["fields"]["campaigns"] == "no campaigns 'nope-a', 'nope-b'"
    # Private addresses and local names, where the deployment does not allow them.
    services.webhooks.allow_private = False
    for url in ("http://10.1.2.3/hook", "http://localhost/hook", "http://[::ffff:127.0.0.1]/"):
        response = client.patch(path, json={"url": url}, headers=marketing)
        assert response.status_code == 400, url
        assert "REFGATE_WEBHOOK_ALLOW_PRIVATE" in response.json["fields"]["url"], url
    assert services.webhooks.require(hook["id"]) == stored  # nothing changed by any of that
    # A host stored in the ASCII form checked and connected to, as at registration.
    folded = client.patch(path, json={"url": "https://ｅｘａｍｐｌｅ.com/x"}, headers=marketing)
    assert folded.status_code == 200 and folded.json["url"] == "https://example.com/x"
    services.webhooks.allow_private = True
    assert client.patch(path, json={"url": "x"}, headers=bearer(keys["risk"])).status_code == 403
    missing = client.patch(
        "/api/v1/webhooks/wh_0000000000000000",
        json={"url": receiver.url("/new")},
        headers=marketing,
    )
    assert missing.status_code == 404
    # Moved, with another event: what happens next goes to the new URL only.
    receiver.secrets["/new"] = hook["secret"]
    moved = client.patch(
        path,
        json={"url": receiver.url("/new"), "events": ["reward.credited", "conversion.created"]},
        headers=marketing,
    )
    assert moved.status_code == 200, moved.json
    assert moved.json["url"] == receiver.url("/new")
    assert moved.json["events"] == ["conversion.created", "reward.credited"]
    assert moved.json["disabled"] is False and moved.json["campaigns"] == []
    convert(client, keys, services, campaign, "bob")
    services.webhooks.run(time.time())
    assert receiver.delivered("/old") == []
    delivered = receiver.delivered("/new")
    assert [r["type"] for r in delivered] == ["conversion.created", "reward.credited"]
    assert all(r["valid"] for r in delivered)  # the same secret signs
    # Audited as other changes, naming the fields and not their values.
    entries = [
        e for e in services.audit.recent() if e.action == "api PATCH /api/v1/webhooks/<endpoint_id>"
    ]
    assert entries[0].target == path and entries[0].detail == {"fields": ["events", "url"]}
    assert entries[0].actor == "apikey:test-marketing"
    assert all("new" not in str(e.detail) for e in entries)


def test_changed_campaigns_are_delivered_from_then_on(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    admin = bearer(keys["admin"])
    other = client.post(
        "/api/v1/campaigns",
        json={
            "slug": "green-tea",
            "name": "Green tea",
            "destination_url": "https://shop.example.com/green",
            "reward": {"amount": 1, "budget_total": 100},
        },
        headers=admin,
    ).json
    hook = register(
        client,
        keys["admin"],
        receiver,
        "/one",
        events=["conversion.created"],
        campaigns=["milk-tea"],
    )
    path = f"/api/v1/webhooks/{hook['id']}"
    convert(client, keys, services, other, "before", referrer="gina")
    services.webhooks.run(time.time())
    assert receiver.delivered("/one") == []  # not its campaign
    changed = client.patch(path, json={"campaigns": ["green-tea", "milk-tea"]}, headers=admin)
    assert changed.status_code == 200 and changed.json["campaigns"] == ["green-tea", "milk-tea"]
    # The campaign added is delivered from now on, not its outbox's past.
    services.webhooks.run(time.time())
    assert receiver.delivered("/one") == []
    convert(client, keys, services, other, "after", referrer="gina")
    convert(client, keys, services, campaign, "mia")
    services.webhooks.run(time.time())
    got = {
        (r["payload"]["campaign"], r["payload"]["data"]["participant"])
        for r in receiver.delivered("/one")
    }
    assert got == {("green-tea", "after"), ("milk-tea", "mia")}
    # Only the other campaign; then every campaign again (null), delivered from where it was.
    only = client.patch(path, json={"campaigns": ["green-tea"]}, headers=admin)
    assert only.json["campaigns"] == ["green-tea"]
    convert(client, keys, services, campaign, "skipped")
    services.webhooks.run(time.time())
    assert len(receiver.delivered("/one")) == 2
    every = client.patch(path, json={"campaigns": None}, headers=admin)
    assert every.status_code == 200 and every.json["campaigns"] == []
    convert(client, keys, services, campaign, "later")
    services.webhooks.run(time.time())
    participants = [r["payload"]["data"]["participant"] for r in receiver.delivered("/one")]
    assert participants[2:] == ["later"]
    # Disabling still works alone, and with a change in the same request.
    paused = client.patch(path, json={"disabled": True, "events": ["flag.raised"]}, headers=admin)
    assert paused.json["disabled"] is True and paused.json["events"] == ["flag.raised"]


def test_the_delivery_log_pages_by_cursor(
    client: FlaskClient,
    keys: dict[str, str],
    services: Services,
    campaign: dict[str, Any],
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    services.webhooks.max_attempts = 1  # each attempt fails the event for good
    receiver.always_fail.add("/down")
    hook = register(client, keys["marketing"], receiver, "/down", events=["conversion.created"])
    path = f"/api/v1/webhooks/{hook['id']}/deliveries"
    marketing = bearer(keys["marketing"])
    now = time.time()

    def fail_one(user: str) -> None:
        nonlocal now
        convert(client, keys, services, campaign, user)
        now += 1
        services.webhooks.run(now)

    for n in range(5):
        fail_one(f"u{n}")
    whole = client.get(path, headers=marketing).json
    assert len(whole["deliveries"]) == len(whole["failed"]) == 5
    assert whole["next_cursor"] is None
    pages = [client.get(f"{path}?limit=2", headers=marketing).json]
    # Attempts made and events failed between the pages come before them: nothing shifts.
    fail_one("late1")
    while pages[-1]["next_cursor"] is not None:
        fail_one(f"late{len(pages) + 1}")
        response = client.get(
            f"{path}?limit=2&cursor={pages[-1]['next_cursor']}", headers=marketing
        )
        assert response.status_code == 200, response.json
        pages.append(response.json)
    assert [len(p["deliveries"]) for p in pages] == [2, 2, 1]
    assert [len(p["failed"]) for p in pages] == [2, 2, 1]
    assert [d for p in pages for d in p["deliveries"]] == whole["deliveries"]
    assert [f for p in pages for f in p["failed"]] == whole["failed"]
    # A list at its end stays empty while the other goes on.
    services.webhooks.redeliver(hook["id"], whole["failed"][0]["event_id"], now=now)
    now += 1
    services.webhooks.run(now)  # fails again: a new log entry, failed anew (newest)
    first = client.get(f"{path}?limit=8", headers=marketing).json
    assert first["failed"][0]["event_id"] == whole["failed"][0]["event_id"]
    assert len(first["deliveries"]) == len(first["failed"]) == 8  # 9 attempts, 8 failed
    rest = client.get(f"{path}?limit=8&cursor={first['next_cursor']}", headers=marketing).json
    assert len(rest["deliveries"]) == 1 and rest["failed"] == [] and rest["next_cursor"] is None
    # Bad cursors: not one, another endpoint's, another listing's.
    other = register(client, keys["marketing"], receiver, "/other", events=["flag.raised"])
    foreign = client.get(
        f"/api/v1/webhooks/{other['id']}/deliveries?cursor={pages[0]['next_cursor']}",
        headers=marketing,
    )
    assert foreign.status_code == 400 and "another listing" in foreign.json["fields"]["cursor"]
    from gateway.cursors import encode

    scope = {"e": hook["id"]}
    for cursor in (
        "nope",
        encode("webhook-log", scope, ["1-0"]),
        encode("webhook-log", scope, ["x-1", []]),
        encode("webhook-log", scope, [7, []]),
        encode("webhook-log", scope, ["", [1.0]]),
        encode("webhook-log", scope, ["", ["a", "b"]]),
        encode("webhook-log", scope, ["", {}]),
    ):
        response = client.get(path, query_string={"cursor": cursor}, headers=marketing)
        assert response.status_code == 400, cursor
        assert "send next_cursor as it came" in response.json["fields"]["cursor"], cursor
    rewards = encode("rewards", {"c": 1, "r": None, "s": None}, [1.0, "u1"])
    response = client.get(path, query_string={"cursor": rewards}, headers=marketing)
    assert response.status_code == 400 and "another listing" in response.json["fields"]["cursor"]
    # Both lists at their end: an empty page, no cursor.
    done = encode("webhook-log", scope, ["", []])
    empty = client.get(path, query_string={"cursor": done}, headers=marketing).json
    assert empty == {"deliveries": [], "failed": [], "next_cursor": None}
