"""Listing rewards: cursor (keyset) paging that rewards arriving meanwhile never shift, and
status filters that read the rewards-by-status indexes (built once for older campaigns)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jsonschema_rs
import pytest
from flask.testing import FlaskClient, FlaskCliRunner

from gateway.cursors import encode
from gateway.flags import FlagCandidate
from gateway.openapi import openapi_document
from gateway.rewards import STATUSES, RewardService
from gateway.services import Services
from gateway.store import keys as store_keys
from tests.conftest import bearer
from tests.test_conversions import record_click, setup_campaign


def pages(
    client: FlaskClient, admin: dict[str, str], query: str, limit: int
) -> list[dict[str, Any]]:
    """Every page of a listing, following next_cursor."""
    found = [client.get(f"/api/v1/rewards?{query}&limit={limit}", headers=admin).json]
    while found[-1]["next_cursor"] is not None:
        cursor = found[-1]["next_cursor"]
        response = client.get(
            f"/api/v1/rewards?{query}&limit={limit}&cursor={cursor}", headers=admin
        )
        assert response.status_code == 200, response.json
        found.append(response.json)
    return found


def users_of(listed: list[dict[str, Any]]) -> list[str]:
    return [row["user"] for page in listed for row in page["rewards"]]


def test_a_cursor_continues_where_its_page_ended_while_rewards_arrive(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    campaign = setup_campaign(client, admin)
    users = [f"p{n:02d}" for n in range(12)]
    for user in users:
        services.conversions.convert(record_click(services, campaign, "alice"), user)
    first = client.get("/api/v1/rewards?campaign=tea&limit=5", headers=admin).json
    assert [r["user"] for r in first["rewards"]] == users[::-1][:5]
    assert first["offset"] == 0 and isinstance(first["next_cursor"], str)
    # Three rewards arrive between the pages: an offset of 5 would now repeat p09..p07.
    for user in ("n1", "n2", "n3"):
        services.conversions.convert(record_click(services, campaign, "alice"), user)
    shifted = client.get("/api/v1/rewards?campaign=tea&limit=5&offset=5", headers=admin).json
    assert [r["user"] for r in shifted["rewards"]][:3] == ["p09", "p08", "p07"]
    second = client.get(
        f"/api/v1/rewards?campaign=tea&limit=5&cursor={first['next_cursor']}", headers=admin
    ).json
    assert [r["user"] for r in second["rewards"]] == users[::-1][5:10]
    assert second["offset"] is None and second["total"] == 15
    third = client.get(
        f"/api/v1/rewards?campaign=tea&limit=5&cursor={second['next_cursor']}", headers=admin
    ).json
    assert [r["user"] for r in third["rewards"]] == ["p01", "p00"]
    assert third["next_cursor"] is None  # the last page says so
    # An exactly full last page: no cursor to an empty page.
    full = client.get("/api/v1/rewards?campaign=tea&limit=15", headers=admin).json
    assert len(full["rewards"]) == 15 and full["next_cursor"] is None
    # The offset's answer gives a cursor too: a client can switch.
    assert isinstance(shifted["next_cursor"], str)
    document = openapi_document()
    listed = document["paths"]["/rewards"]["get"]["responses"]["200"]["content"]
    validator = jsonschema_rs.validator_for(
        {"allOf": [listed["application/json"]["schema"]], **document}
    )
    for page in (first, second, third, shifted):
        validator.validate(page)


def test_rewards_at_one_time_page_by_participant(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    """Rewards recorded at the very same time (ties in the index) are each listed once."""
    campaign = setup_campaign(client, admin)
    now = time.time()
    users = ["t1", "t2", "t3", "t4", "t5", "t6", "t7"]
    for n, user in enumerate(users):
        at = now if 1 <= n <= 5 else now + (n - 3)
        services.conversions.convert(record_click(services, campaign, "bob"), user, now=at)
    for limit in (1, 2, 3, 4):
        listed = pages(client, admin, "campaign=tea", limit)
        assert users_of(listed) == ["t7", "t6", "t5", "t4", "t3", "t2", "t1"], limit
        by_offset = client.get("/api/v1/rewards?campaign=tea", headers=admin).json
        assert [r["user"] for r in by_offset["rewards"]] == users_of(listed)


def test_filters_page_by_cursor_and_read_only_their_page(
    client: FlaskClient,
    admin: dict[str, str],
    services: Services,
    keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign = setup_campaign(client, admin)
    for n in range(10):
        referrer = "bad" if n % 2 else "good"
        services.conversions.convert(record_click(services, campaign, referrer), f"u{n}")
    flag, _ = services.flags.raise_flag(
        campaign["id"], "tea", FlagCandidate("referrer", "bad", 0.9, ("farm",)), 1.0
    )
    read: list[int] = []
    rows_of = RewardService._rows

    def counted(self: RewardService, ck: Any, wanted: list[str]) -> list[dict[str, Any]]:
        read.append(len(wanted))
        return rows_of(self, ck, wanted)

    monkeypatch.setattr(RewardService, "_rows", counted)
    held = pages(client, admin, "campaign=tea&status=held", 2)
    assert users_of(held) == ["u9", "u7", "u5", "u3", "u1"]
    assert {page["total"] for page in held} == {5}
    assert read == [2, 2, 1]  # each page its own rows, not every reward of the campaign
    credited = pages(client, admin, "campaign=tea&referrer=good&status=credited", 2)
    assert users_of(credited) == ["u8", "u6", "u4", "u2", "u0"]
    assert pages(client, admin, "campaign=tea&referrer=good&status=held", 2)[0]["total"] == 0
    # A decision moves them between the indexes, with the rewards, atomically.
    risk = bearer(keys["risk"])
    decided = client.post(
        f"/api/v1/flags/{flag.id}/decision", json={"decision": "fraud"}, headers=risk
    )
    assert decided.status_code == 200
    assert users_of(pages(client, admin, "campaign=tea&status=held", 3)) == []
    denied = pages(client, admin, "campaign=tea&referrer=bad&status=denied", 3)
    assert users_of(denied) == ["u9", "u7", "u5", "u3", "u1"]
    assert_indexes_match(services, campaign["id"])


def assert_indexes_match(services: Services, campaign_id: int) -> None:
    """Every reward is in exactly the by-status indexes of its status, at its time."""
    redis = services.store.main
    ck = store_keys.campaign_keys(campaign_id)
    for raw_user, at in redis.zrange(ck.rewards, 0, -1, withscores=True):
        user = raw_user.decode()
        status = redis.hget(ck.reward(user), "status").decode()
        referrer = redis.hget(ck.reward(user), "referrer").decode()
        for other in STATUSES:
            expected = at if other == status else None
            assert redis.zscore(ck.rewards_by_status(other), user) == expected, (user, other)
            assert redis.zscore(ck.referrer_rewards_by_status(referrer, other), user) == expected, (
                user,
                other,
            )


def test_rewards_from_before_the_status_indexes_are_listed_by_status(
    client: FlaskClient, admin: dict[str, str], services: Services, keys: dict[str, str]
) -> None:
    """A campaign whose rewards were written before the indexes: the first filtered listing
    builds them (then marks the campaign), and what moves afterwards moves in them."""
    campaign = setup_campaign(client, admin)
    for n in range(7):
        referrer = "bad" if n < 3 else "good"
        services.conversions.convert(record_click(services, campaign, referrer), f"o{n}")
    flag, _ = services.flags.raise_flag(
        campaign["id"], "tea", FlagCandidate("referrer", "bad", 0.9, ("farm",)), 1.0
    )
    # As the data was before: no by-status index, no mark.
    redis = services.store.main
    ck = store_keys.campaign_keys(campaign["id"])
    referrers = ("bad", "good")
    redis.delete(
        *(ck.rewards_by_status(s) for s in STATUSES),
        *(ck.referrer_rewards_by_status(r, s) for r in referrers for s in STATUSES),
    )
    redis.hdel(ck.counters, store_keys.REWARD_STATUS_INDEXED)
    # A move before the migration writes the indexes of that one reward only: not trusted yet.
    services.flags.decide(
        services.flags.raise_flag(
            campaign["id"], "tea", FlagCandidate("participant", "o6", 0.9, ("alt",)), 1.0
        )[0].id,
        "fraud",
        "",
        "test",
    )
    held = client.get("/api/v1/rewards?campaign=tea&status=held", headers=admin).json
    assert [r["user"] for r in held["rewards"]] == ["o2", "o1", "o0"] and held["total"] == 3
    assert redis.hget(ck.counters, store_keys.REWARD_STATUS_INDEXED) == b"1"
    credited = client.get(
        "/api/v1/rewards?campaign=tea&referrer=good&status=credited", headers=admin
    ).json
    assert [r["user"] for r in credited["rewards"]] == ["o5", "o4", "o3"]
    # Raised, the flag held it; decided fraud, denied it.
    denied = client.get("/api/v1/rewards?campaign=tea&status=denied", headers=admin).json
    assert [r["user"] for r in denied["rewards"]] == ["o6"]
    assert_indexes_match(services, campaign["id"])
    # Afterwards the scripts keep them: a release moves the held ones.
    risk = bearer(keys["risk"])
    client.post(f"/api/v1/flags/{flag.id}/decision", json={"decision": "legit"}, headers=risk)
    assert client.get("/api/v1/rewards?campaign=tea&status=held", headers=admin).json["total"] == 0
    assert_indexes_match(services, campaign["id"])
    # Running the migration again changes nothing.
    redis.hdel(ck.counters, store_keys.REWARD_STATUS_INDEXED)
    services.rewards.index_statuses(campaign["id"])
    assert_indexes_match(services, campaign["id"])


def _cursor(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "x",
        "!!!",
        "é",
        "a" * 2000,
        _cursor([1, 2]),
        _cursor({"k": "rewards", "s": {"c": 1, "r": None, "s": None}, "p": []}),
        _cursor({"k": "rewards", "s": {"c": 1, "r": None, "s": None}, "p": ["a", "b"]}),
        _cursor({"k": "rewards", "s": {"c": 1, "r": None, "s": None}, "p": [1.0]}),
        _cursor({"k": "rewards", "s": {"c": 1, "r": None, "s": None}, "p": [True, "a"]}),
        _cursor({"k": "rewards", "s": {"c": 1, "r": None, "s": None}, "p": [10**400, "a"]}),
        _cursor({"k": "rewards", "s": {"c": 1, "r": None, "s": None}, "p": [1.0, ""]}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(
            b'{"k": "rewards", "s": {"c": 1, "r": null, "s": null}, "p": [NaN, "a"]}'
        ).decode(),
    ],
)
def test_a_malformed_cursor_is_a_400(
    client: FlaskClient, admin: dict[str, str], services: Services, cursor: str
) -> None:
    campaign = setup_campaign(client, admin)
    assert campaign["id"] == 1
    response = client.get(
        "/api/v1/rewards", query_string={"campaign": "tea", "cursor": cursor}, headers=admin
    )
    assert response.status_code == 400, response.json
    assert response.json["error"] == "validation_failed"
    assert "send next_cursor as it came" in response.json["fields"]["cursor"]


def test_a_cursor_of_another_listing_is_a_400(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    campaign = setup_campaign(client, admin)
    for n in range(3):
        services.conversions.convert(record_click(services, campaign, "alice"), f"c{n}")
    cursor = client.get("/api/v1/rewards?campaign=tea&limit=1", headers=admin).json["next_cursor"]
    for query in (
        "campaign=tea&status=credited",
        "campaign=tea&referrer=alice",
    ):
        response = client.get(f"/api/v1/rewards?{query}&cursor={cursor}", headers=admin)
        assert response.status_code == 400
        assert "another listing" in response.json["fields"]["cursor"]
    other = encode("deliveries", {"e": "wh_0123456789abcdef"}, ["1-0"])
    response = client.get(f"/api/v1/rewards?campaign=tea&cursor={other}", headers=admin)
    assert response.status_code == 400 and "another listing" in response.json["fields"]["cursor"]
    both = client.get(f"/api/v1/rewards?campaign=tea&offset=1&cursor={cursor}", headers=admin)
    assert both.status_code == 400 and "not with cursor" in both.json["fields"]["offset"]


def test_refgate_rewards_reindex_puts_every_reward_in_its_status_index(
    client: FlaskClient, admin: dict[str, str], services: Services, runner: FlaskCliRunner
) -> None:
    """As after an upgrade during which workers still running the older convert.lua wrote
    rewards beside a marked campaign: the command indexes them, marked or not."""
    campaign = setup_campaign(client, admin)
    for n in range(4):
        services.conversions.convert(record_click(services, campaign, "alice"), f"r{n}")
    redis = services.store.main
    ck = store_keys.campaign_keys(campaign["id"])
    redis.zrem(ck.rewards_by_status("credited"), "r1", "r3")  # written without the indexes
    redis.zrem(ck.referrer_rewards_by_status("alice", "credited"), "r1", "r3")
    result = runner.invoke(args=["rewards", "reindex"])
    assert result.exit_code == 0, result.output
    assert "tea: 4 rewards indexed by status" in result.output
    assert_indexes_match(services, campaign["id"])
    listed = client.get("/api/v1/rewards?campaign=tea&status=credited", headers=admin).json
    assert [r["user"] for r in listed["rewards"]] == ["r3", "r2", "r1", "r0"]
    for slug in ("nope", ""):
        bad = runner.invoke(args=["rewards", "reindex", "--campaign", slug])
        assert bad.exit_code == 2 and f"no campaign {slug!r}" in bad.output, slug
