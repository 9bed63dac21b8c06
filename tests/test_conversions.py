"""Conversions: joins into the referral tree and the reward ledger, exactly once, within budget."""

from __future__ import annotations

import dataclasses
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jsonschema_rs
import pytest
from flask.testing import FlaskClient

from gateway.errors import ApiError
from gateway.events import ClickEvent
from gateway.flags import FlagCandidate
from gateway.openapi import openapi_document
from gateway.rewards import RewardService
from gateway.services import Services
from gateway.store import keys
from tests.conftest import bearer


def setup_campaign(client: FlaskClient, admin: dict[str, str], **reward: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/campaigns",
        json={
            "slug": "tea",
            "name": "Tea",
            "destination_url": "https://shop.example.com/",
            "reward": {"amount": 1, "budget_total": 100, **reward},
        },
        headers=admin,
    )
    assert response.status_code == 201, response.json
    data: dict[str, Any] = response.json
    return data


def record_click(
    services: Services,
    campaign: dict[str, Any],
    referrer: str,
    *,
    ts: float | None = None,
    decision: str = "allow",
    visitor: str | None = None,
    ip_hash: str = "",
    prefix: str = "203.0.113.0/24",
    ua: str = "Mozilla/5.0 (iPhone) Safari",
    scored: bool = True,
) -> str:
    """A click on the referrer's link, recorded through the click path's own recording script."""
    services.links.mint(services.campaigns.require(campaign["slug"]), referrer)
    number = int(services.store.main.hget(f"rg:{{c{campaign['id']}}}:referrer-index", referrer))
    click_id = f"{campaign['id']:x}.{secrets.token_urlsafe(12)}"
    services.recorder.write(
        [
            ClickEvent(
                id=click_id,
                ts=time.time() - 60 if ts is None else ts,
                campaign_id=campaign["id"],
                campaign=campaign["slug"],
                referrer_id=number,
                visitor_id=visitor,
                ip_hash=ip_hash or secrets.token_hex(10),
                prefix=prefix,
                ua=ua,
                accept_language="zh-CN",
                referer="",
                scan=False,
                outcome="redirect",
                decision=decision,
                score=0.0 if decision == "allow" else 0.6,
                scored=scored,
            )
        ]
    )
    return click_id


def convert(client: FlaskClient, key: str, click_id: str, user: str, **extra: Any) -> Any:
    return client.post(
        "/api/v1/conversions",
        json={"click_id": click_id, "user": user, **extra},
        headers=bearer(key),
    )


@pytest.fixture
def conversion_key(services: Services) -> str:
    plaintext, _ = services.api_keys.create("landing", "conversion")
    return plaintext


def test_a_conversion_joins_the_tree_and_credits_the_sharer(
    client: FlaskClient, admin: dict[str, str], services: Services, conversion_key: str
) -> None:
    campaign = setup_campaign(client, admin)
    click = record_click(services, campaign, "alice")
    response = convert(client, conversion_key, click, "bob")
    assert response.status_code == 201, response.json
    assert response.json == {
        "participant": "bob",
        "parent": "alice",
        "depth": 1,
        "click_id": click,
        "reward": {"status": "credited", "reason": "", "amount": 1},
    }
    grandchild = convert(
        client, conversion_key, record_click(services, campaign, "bob"), "carol"
    ).json
    assert grandchild["depth"] == 2 and grandchild["parent"] == "bob"
    tree = client.get("/api/v1/campaigns/tea/tree/alice?depth=2", headers=admin).json
    assert tree["subtree_size"] == 2 and tree["subtree_height"] == 2 and tree["depth"] == 0
    bob = tree["children_page"]["nodes"][0]
    assert bob["id"] == "bob" and bob["children_page"]["nodes"][0]["id"] == "carol"
    assert [
        n["id"]
        for n in client.get("/api/v1/campaigns/tea/ancestors/carol", headers=admin).json[
            "ancestors"
        ]
    ] == [
        "alice",
        "bob",
    ]
    stats = client.get("/api/v1/campaigns/tea/stats", headers=admin).json
    assert stats["tree"]["participants"] == 3 and stats["tree"]["depth_distribution"] == {
        "0": 1,
        "1": 1,
        "2": 1,
    }
    assert sorted(stats["tree"]["top_sharers"], key=lambda s: s["referrer"]) == [
        {"referrer": "alice", "verified": 1},
        {"referrer": "bob", "verified": 1},
    ]
    assert stats["budget"] == {"total": 100, "spent": 2, "held": 0, "left": 98, "exhausted": False}


def test_idempotency_and_first_touch(
    client: FlaskClient, admin: dict[str, str], services: Services, conversion_key: str
) -> None:
    campaign = setup_campaign(client, admin)
    first_click = record_click(services, campaign, "alice")
    first = convert(client, conversion_key, first_click, "bob", idempotency_key="k1")
    assert first.status_code == 201
    retry = convert(client, conversion_key, first_click, "bob", idempotency_key="k1")
    assert retry.status_code == 200 and retry.json == first.json
    # The same user through another sharer's link later: first touch wins.
    later = convert(client, conversion_key, record_click(services, campaign, "dave"), "bob")
    assert later.status_code == 200 and later.json == first.json
    assert services.rewards.budget(services.campaigns.require("tea"))["spent"] == 1
    # The same key for another user is the client's mistake: refused, not bob's answer, and
    # carol has not joined (a join under a fresh key then works).
    reused = convert(client, conversion_key, first_click, "carol", idempotency_key="k1")
    assert reused.status_code == 422
    assert reused.json["error"] == "idempotency_key_reused"
    assert set(reused.json["fields"]) == {"idempotency_key"}
    assert services.tree.nodes(services.campaigns.require("tea"), ["carol"]) == [None]
    fresh = convert(client, conversion_key, first_click, "carol", idempotency_key="k2")
    assert fresh.status_code == 201 and fresh.json["participant"] == "carol"


def test_a_retry_after_review_still_gets_the_first_answer_from_a_compact_node(
    client: FlaskClient, admin: dict[str, str], services: Services, conversion_key: str
) -> None:
    campaign = setup_campaign(client, admin)
    services.flags.raise_flag(
        campaign["id"], "tea", FlagCandidate("referrer", "alice", 0.9, ("test",)), time.time()
    )
    first = convert(client, conversion_key, record_click(services, campaign, "alice"), "bob")
    assert first.status_code == 201 and first.json["reward"]["status"] == "held"
    flag = services.flags.find([campaign["id"]], status="open")[0][0]
    services.flags.decide(flag.id, "legit", "checked", "risk@example.com")
    assert services.rewards.get(campaign["id"], "bob")["status"] == "credited"  # type: ignore[index]
    # The reward moved on; the answer to a retry is still the one the join gave.
    retry = convert(client, conversion_key, record_click(services, campaign, "dave"), "bob")
    assert retry.status_code == 200 and retry.json == first.json
    # No copy of the answer in the node: small values keep Redis's compact hash encoding.
    node = keys.campaign_keys(campaign["id"]).participant("bob")
    assert services.store.main.hget(node, "answer") is None
    assert services.store.main.object("encoding", node) in (b"listpack", b"ziplist")


def test_refusals_are_clear_and_recorded(
    client: FlaskClient, admin: dict[str, str], services: Services, conversion_key: str
) -> None:
    campaign = setup_campaign(client, admin)
    own = convert(client, conversion_key, record_click(services, campaign, "alice"), "alice")
    assert own.status_code == 422 and own.json["error"] == "self_referral"
    # Refused before anything is written: a retry is refused alike, alice is in no tree.
    again = convert(client, conversion_key, record_click(services, campaign, "alice"), "alice")
    assert again.status_code == 422 and again.json["error"] == "self_referral"
    assert services.tree.stats(services.campaigns.require("tea"))["participants"] == 0
    convert(client, conversion_key, record_click(services, campaign, "alice"), "bob")
    # bob's link converting alice (bob's parent) would make a cycle
    cycle = convert(client, conversion_key, record_click(services, campaign, "bob"), "alice")
    assert cycle.status_code == 409 and cycle.json["error"] == "already_participant"
    convert(client, conversion_key, record_click(services, campaign, "bob"), "carol")
    ring = convert(client, conversion_key, record_click(services, campaign, "carol"), "bob")
    assert ring.status_code == 200 and ring.json["parent"] == "alice"  # bob joined already
    for click_id, error in (
        ("ff.AAAAAAAAAAAAAAAA", "unknown_click"),
        (f"{campaign['id']:x}.AAAAAAAAAAAAAAAA", "unknown_click"),
    ):
        response = convert(client, conversion_key, click_id, "zed")
        assert response.status_code == 404 and response.json["error"] == error
    # A value that cannot be a click id is the sender's mistake, not a click to retry: 400.
    landing = f"https://shop.example.com/landing?rg_click={campaign['id']:x}.AAAAAAAAAAAAAAAA"
    for click_id in ("nonsense", landing, f"{campaign['id']:x}.AAAAAAAAAAAAAAAA\n", "ff.AAAA"):
        response = convert(client, conversion_key, click_id, "zed")
        assert response.status_code == 400, response.json
        assert response.json["error"] == "validation_failed"
        assert "rg_click" in response.json["fields"]["click_id"]
    for body, field in (
        ({"click_id": "x"}, "user"),
        ({"user": "u"}, "click_id"),
        ({"click_id": "x", "user": "bad user"}, "user"),
    ):
        response = client.post("/api/v1/conversions", json=body, headers=bearer(conversion_key))
        assert response.status_code == 400 and field in response.json["fields"]
    stats = client.get("/api/v1/campaigns/tea/stats", headers=admin).json["tree"]
    assert stats["refused"] == {"self_referral": 2, "already_participant": 1, "unknown_click": 1}
    refused = [
        f
        for _, f in services.store.main.xrange(f"rg:{{c{campaign['id']}}}:conversions")
        if f[b"status"] == b"refused"
    ]
    assert len(refused) == 4


def test_a_cycle_through_a_root_is_refused(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    campaign = setup_campaign(client, admin)
    convert_ = services.conversions.convert
    convert_(record_click(services, campaign, "root"), "a")
    convert_(record_click(services, campaign, "a"), "b")
    with pytest.raises(ApiError) as refused:
        # "root" never joined through a link, so it is a root; joining under its own descendant
        convert_(record_click(services, campaign, "b"), "root")
    assert refused.value.code == "already_participant"


def test_clicks_that_may_not_earn(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    campaign = setup_campaign(client, admin)
    convert_ = services.conversions.convert
    denied = convert_(record_click(services, campaign, "a", decision="deny_credit"), "u1").answer
    assert denied["reward"] == {"status": "denied", "reason": "click_denied", "amount": 0}
    challenged = convert_(record_click(services, campaign, "a", decision="challenge"), "u2").answer
    assert (
        challenged["reward"]["status"] == "held"
        and challenged["reward"]["reason"] == "challenged_click"
    )
    outage = convert_(record_click(services, campaign, "a", scored=False), "u3").answer
    assert outage["reward"]["reason"] == "unscored_click"
    fast = convert_(record_click(services, campaign, "a", ts=time.time() - 1), "u4").answer
    assert fast["reward"] == {"status": "held", "reason": "conversion_too_fast", "amount": 1}
    budget = services.rewards.budget(services.campaigns.require("tea"))
    assert (budget["spent"], budget["held"]) == (0, 3)


def test_hold_release_and_clawback(
    client: FlaskClient, admin: dict[str, str], services: Services, keys: dict[str, str]
) -> None:
    campaign = setup_campaign(client, admin)
    convert_ = services.conversions.convert
    convert_(record_click(services, campaign, "good"), "g1")
    convert_(record_click(services, campaign, "bad"), "b1")
    convert_(record_click(services, campaign, "bad"), "b2")
    flags = services.flags
    good_flag, _ = flags.raise_flag(
        campaign["id"], "tea", FlagCandidate("referrer", "good", 0.7, ("looks odd",)), 1.0
    )
    bad_flag, _ = flags.raise_flag(
        campaign["id"], "tea", FlagCandidate("referrer", "bad", 0.9, ("farm",)), 1.0
    )
    tea = services.campaigns.require("tea")
    assert services.rewards.budget(tea)["held"] == 3  # raising a flag holds what it touches
    # A conversion arriving while its sharer is flagged is held too.
    assert (
        convert_(record_click(services, campaign, "bad"), "b3").answer["reward"]["reason"]
        == "flagged"
    )
    risk = bearer(keys["risk"])
    client.post(f"/api/v1/flags/{good_flag.id}/decision", json={"decision": "legit"}, headers=risk)
    client.post(
        f"/api/v1/flags/{bad_flag.id}/decision",
        json={"decision": "fraud", "note": "farm"},
        headers=risk,
    )
    rows = {
        r["user"]: r
        for r in client.get("/api/v1/rewards?campaign=tea", headers=admin).json["rewards"]
    }
    assert rows["g1"]["status"] == "credited" and rows["g1"]["reason"] == "reviewed_legit"
    assert {rows[u]["status"] for u in ("b1", "b2", "b3")} == {"denied"}
    assert services.rewards.budget(tea) == {
        "total": 100,
        "spent": 1,
        "held": 0,
        "left": 99,
        "exhausted": False,
    }
    # After a fraud decision, the sharer earns nothing more.
    assert (
        convert_(record_click(services, campaign, "bad"), "b4").answer["reward"]["reason"]
        == "referrer_fraud"
    )
    # A fraud decision on credited rewards claws them back, as new ledger entries.
    late, _ = flags.raise_flag(
        campaign["id"], "tea", FlagCandidate("participant", "g1", 0.8, ("alt account",)), 2.0
    )
    flags.decide(late.id, "fraud", "same phone", "apikey:test-risk")
    assert services.rewards.get(campaign["id"], "g1")["status"] == "denied"  # type: ignore[index]
    entries = [(e["type"], e["user"]) for e in services.rewards.ledger(campaign["id"])]
    assert entries[:4] == [
        ("credited", "g1"),
        ("credited", "b1"),
        ("credited", "b2"),
        ("held", "g1"),
    ]
    assert (
        ("credited", "g1") in entries[4:]
        and ("denied", "b1") in entries
        and ("denied", "g1") in entries
    )
    by_referrer = client.get(
        "/api/v1/rewards?campaign=tea&referrer=bad&status=denied", headers=admin
    ).json
    assert by_referrer["total"] == 4


def test_a_cluster_holds_what_it_names_and_a_fraud_decision_denies_it(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    campaign = setup_campaign(client, admin)
    convert_ = services.conversions.convert
    convert_(record_click(services, campaign, "m1"), "m2")
    flags = services.flags
    shared = FlagCandidate("cluster", "browser:b1", 0.85, ("one browser",), members=("m1", "m2"))
    flag, _ = flags.raise_flag(campaign["id"], "tea", shared, 1.0)
    assert services.rewards.get(campaign["id"], "m2")["status"] == "held"  # type: ignore[index]
    # Raised again with the same members: nothing more moves; a member's later referral is
    # not held for the cluster alone (weak evidence: a shared browser, a busy network).
    flags.raise_flag(campaign["id"], "tea", shared, 2.0)
    later = convert_(record_click(services, campaign, "m2"), "m3").answer["reward"]
    assert later["status"] == "credited"
    flags.decide(flag.id, "fraud", "one phone", "apikey:risk")
    assert services.rewards.get(campaign["id"], "m2")["status"] == "denied"  # type: ignore[index]


def test_a_reward_stays_held_while_another_flag_about_it_is_open(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    """One flag's legit decision speaks for that flag: a reward another open flag is about
    stays held (as the reward of a member of two overlapping chains), and a corrected fraud
    decision gives it back as held, not credited, until the other review settles it."""
    campaign = setup_campaign(client, admin)
    tea = services.campaigns.require("tea")
    convert_ = services.conversions.convert
    convert_(record_click(services, campaign, "m1"), "m2")
    convert_(record_click(services, campaign, "n1"), "n2")
    flags = services.flags
    first, _ = flags.raise_flag(
        campaign["id"],
        "tea",
        FlagCandidate("cluster", "chain:m1", 0.9, ("fast joins",), members=("m1", "m2")),
        1.0,
    )
    second, _ = flags.raise_flag(
        campaign["id"],
        "tea",
        FlagCandidate("cluster", "chain:n1", 0.9, ("fast joins",), members=("n1", "m1")),
        1.0,
    )

    def status(user: str) -> str:
        found = services.rewards.get(campaign["id"], user)
        assert found is not None
        return str(found["status"])

    assert (status("m2"), status("n2")) == ("held", "held")
    flags.decide(first.id, "legit", "", "apikey:risk")
    # m2's reward (m1's referral) is still under the second chain's review: held.
    assert (status("m2"), status("n2")) == ("held", "held")
    flags.decide(first.id, "fraud", "", "apikey:risk")
    assert status("m2") == "denied"
    flags.decide(first.id, "legit", "", "apikey:risk")  # taken back: held again, not paid
    assert status("m2") == "held"
    budget = services.rewards.budget(tea)
    assert (budget["spent"], budget["held"], budget["left"]) == (0, 2, 98)
    flags.decide(second.id, "legit", "", "apikey:risk")
    assert (status("m2"), status("n2")) == ("credited", "credited")
    budget = services.rewards.budget(tea)
    assert (budget["spent"], budget["held"], budget["left"]) == (2, 0, 98)
    moves = [
        (e["type"], e["user"], e["flag"])
        for e in services.rewards.ledger(campaign["id"])
        if e.get("flag")
    ]
    assert moves[-4:-2] == [("denied", "m2", first.id), ("held", "m2", first.id)]
    assert sorted(moves[-2:]) == [("credited", "m2", second.id), ("credited", "n2", second.id)]


def test_a_growing_cluster_holds_its_new_members_rewards(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    campaign = setup_campaign(client, admin)
    convert_ = services.conversions.convert
    convert_(record_click(services, campaign, "m1"), "m2")
    convert_(record_click(services, campaign, "n1"), "n2")  # n1 is not in the cluster yet
    flags = services.flags
    chain = FlagCandidate("cluster", "chain:m1", 0.9, ("3 joins",), members=("m1", "m2"))
    flags.raise_flag(campaign["id"], "tea", chain, 1.0)
    ledger = len(services.rewards.ledger(campaign["id"]))
    # More evidence, same members: nothing moves (no ledger entry).
    flags.raise_flag(campaign["id"], "tea", dataclasses.replace(chain, reasons=("4 joins",)), 2.0)
    assert len(services.rewards.ledger(campaign["id"])) == ledger
    assert services.rewards.get(campaign["id"], "n2")["status"] == "credited"  # type: ignore[index]
    # A new member: their referral's reward is held now.
    grown = dataclasses.replace(chain, reasons=("5 joins",), members=("m1", "m2", "n1"))
    flags.raise_flag(campaign["id"], "tea", grown, 3.0)
    assert services.rewards.get(campaign["id"], "n2")["status"] == "held"  # type: ignore[index]
    assert len(services.rewards.ledger(campaign["id"])) == ledger + 1


def test_a_clawback_of_credited_rewards(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    campaign = setup_campaign(client, admin)
    services.conversions.convert(record_click(services, campaign, "bad"), "b1")
    flag, _ = services.flags.raise_flag(
        campaign["id"],
        "tea",
        FlagCandidate("click", "unrelated", 0.9, ("x",), evidence={"referrer": "nobody"}),
        1.0,
    )
    services.flags.decide(flag.id, "fraud", "", "apikey:risk")  # touches nothing
    assert services.rewards.get(campaign["id"], "b1")["status"] == "credited"  # type: ignore[index]
    # Decide fraud directly on an unflagged subject's new flag: credited -> held -> denied; a
    # credited reward that a decision reaches without a hold is clawed back.
    from gateway.flags import Flag

    services.rewards.on_decision(
        campaign["id"],
        Flag(
            id="x",
            campaign="tea",
            kind="participant",
            subject="b1",
            score=1,
            reasons=[],
            members=[],
            evidence={},
            status="fraud",
            created_at=0,
            updated_at=0,
        ),
        "fraud",
    )
    reward = services.rewards.get(campaign["id"], "b1")
    assert reward is not None and reward["status"] == "clawed_back"
    assert services.rewards.budget(services.campaigns.require("tea"))["spent"] == 0


def test_budget_exhaustion_and_caps(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    campaign = setup_campaign(client, admin, budget_total=3, max_per_referrer=2)
    convert_ = services.conversions.convert
    statuses = [
        convert_(record_click(services, campaign, "a"), f"a{n}").answer["reward"] for n in range(3)
    ]
    assert [s["status"] for s in statuses] == ["credited", "credited", "denied"]
    assert statuses[2]["reason"] == "referrer_cap"
    assert (
        convert_(record_click(services, campaign, "b"), "b1").answer["reward"]["status"]
        == "credited"
    )
    last = convert_(record_click(services, campaign, "c"), "c1").answer["reward"]
    assert last == {"status": "denied", "reason": "budget_exhausted", "amount": 0}
    campaign_view = client.get("/api/v1/campaigns/tea", headers=admin).json
    assert campaign_view["budget"]["exhausted"] is True and campaign_view["budget"]["left"] == 0


def test_caps_count_units_and_hold_at_least_one_reward(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    """max_per_referrer and max_per_day are units, as the budget is: a cap below the amount
    would deny every reward, so it is refused when the campaign is made or edited."""
    body = {"slug": "tea", "name": "Tea", "destination_url": "https://shop.example.com/"}
    refused = client.post(
        "/api/v1/campaigns",
        json={**body, "reward": {"amount": 5, "budget_total": 20, "max_per_referrer": 3}},
        headers=admin,
    )
    assert refused.status_code == 400
    assert "at least amount" in refused.json["fields"]["reward.max_per_referrer"]
    assert services.campaigns.get("tea") is None
    campaign = setup_campaign(client, admin, amount=5, budget_total=20, max_per_referrer=10)
    edit = client.patch(
        "/api/v1/campaigns/tea",
        json={"reward": {"amount": 5, "budget_total": 20, "max_per_day": 4}},
        headers=admin,
    )
    assert edit.status_code == 400 and set(edit.json["fields"]) == {"reward.max_per_day"}
    assert services.campaigns.require("tea").reward.max_per_referrer == 10  # type: ignore[union-attr]
    convert_ = services.conversions.convert
    paid = [
        convert_(record_click(services, campaign, "a"), f"a{n}").answer["reward"] for n in range(3)
    ]
    # Two rewards of 5 units reach the sharer's 10; the third would pass it.
    assert [(r["status"], r["amount"]) for r in paid] == [
        ("credited", 5),
        ("credited", 5),
        ("denied", 0),
    ]
    assert paid[2]["reason"] == "referrer_cap"


def test_daily_cap(client: FlaskClient, admin: dict[str, str], services: Services) -> None:
    campaign = setup_campaign(client, admin, max_per_day=2)
    convert_ = services.conversions.convert
    day = 20_000 * 86400.0
    outcomes = [
        convert_(
            record_click(services, campaign, "a", ts=day + n * 60), f"u{n}", now=day + n * 60 + 30
        ).answer["reward"]["status"]
        for n in range(3)
    ]
    assert outcomes == ["credited", "credited", "denied"]
    next_day = convert_(
        record_click(services, campaign, "a", ts=day + 86400), "u9", now=day + 86430
    ).answer
    assert next_day["reward"]["status"] == "credited"


def test_five_hundred_parallel_conversions_never_overspend(
    client: FlaskClient, admin: dict[str, str], services: Services, conversion_key: str
) -> None:
    campaign = setup_campaign(client, admin, budget_total=100)
    clicks = [record_click(services, campaign, f"sharer-{n % 25}") for n in range(500)]
    # 32 requests at once in one process: more than a worker admits (admission control would
    # shed some with 503); this test is about the ledger under concurrency.
    services.admission.click_limit = services.admission.other_limit = 64

    def post(index: int) -> tuple[int, dict[str, Any]]:
        response = convert(
            client.application.test_client(),
            conversion_key,
            clicks[index],
            f"user-{index}",
            idempotency_key=f"conv-{index}",
        )
        return response.status_code, response.json

    with ThreadPoolExecutor(max_workers=32) as pool:
        first = list(pool.map(post, range(500)))
    assert {status for status, _ in first} == {201}
    credited = [body for _, body in first if body["reward"]["status"] == "credited"]
    assert len(credited) == 100
    assert {
        body["reward"]["reason"] for _, body in first if body["reward"]["status"] != "credited"
    } == {"budget_exhausted"}
    with ThreadPoolExecutor(max_workers=32) as pool:
        again = list(pool.map(post, range(500)))
    assert {status for status, _ in again} == {200}
    assert [body for _, body in again] == [body for _, body in first]
    tea = services.campaigns.require("tea")
    assert services.rewards.budget(tea) == {
        "total": 100,
        "spent": 100,
        "held": 0,
        "left": 0,
        "exhausted": True,
    }
    ledger = services.rewards.ledger(campaign["id"])
    assert sum(int(e["amount"]) for e in ledger if e["type"] == "credited") == 100


def test_subtree_pages_levels_within_the_node_budget(
    client: FlaskClient,
    admin: dict[str, str],
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign = setup_campaign(client, admin)
    convert_ = services.conversions.convert
    # alice: 7 children c0..c6; child ci has i children ci-0..; c6-0 has 3 children.
    for i in range(7):
        convert_(record_click(services, campaign, "alice"), f"c{i}")
        for j in range(i):
            convert_(record_click(services, campaign, f"c{i}"), f"c{i}-{j}")
    for k in range(3):
        convert_(record_click(services, campaign, "c6-0"), f"c6-0-{k}")

    def get(query: str) -> dict[str, Any]:
        response = client.get(f"/api/v1/campaigns/tea/tree/alice?{query}", headers=admin)
        assert response.status_code == 200, response.json
        data: dict[str, Any] = response.json
        return data

    def count(page: dict[str, Any]) -> int:
        return sum(
            1 + count(n["children_page"]) if "children_page" in n else 1 for n in page["nodes"]
        )

    tree = get("depth=2&limit=4")
    page = tree["children_page"]
    assert [n["id"] for n in page["nodes"]] == ["c0", "c1", "c2", "c3"]
    assert (page["total"], page["next_cursor"]) == (7, 4)
    for node in page["nodes"]:
        below = node.get("children_page")
        expected = int(node["id"][1:])
        if expected == 0:
            assert below is None  # no children, no page
        else:
            assert below["total"] == expected and len(below["nodes"]) == min(4, expected)
            assert "children_page" not in below["nodes"][0]  # depth 2 ends here
    assert not tree["truncated"]
    rest = get("depth=1&limit=4&cursor=4")["children_page"]
    assert [n["id"] for n in rest["nodes"]] == ["c4", "c5", "c6"] and rest["next_cursor"] is None
    deep = get("depth=3&limit=10&cursor=6")["children_page"]["nodes"][0]
    assert deep["id"] == "c6"
    c60 = deep["children_page"]["nodes"][0]
    assert c60["id"] == "c6-0" and len(c60["children_page"]["nodes"]) == 3
    # A budget of 6 nodes (the root and 5 more): spent in order, the first pages first.
    monkeypatch.setattr("gateway.tree.MAX_NODES", 6)
    small = get("depth=2&limit=3")
    assert small["truncated"] and 1 + count(small["children_page"]) == 6
    first = small["children_page"]["nodes"]
    assert [n["id"] for n in first] == ["c0", "c1", "c2"]
    assert len(first[1]["children_page"]["nodes"]) == 1
    cut = first[2]["children_page"]
    assert len(cut["nodes"]) == 1 and (cut["total"], cut["next_cursor"]) == (2, 1)


def test_stats_answer_after_the_flagging_jobs_ran_and_cursors_move_out_of_the_counters(
    client: FlaskClient, admin: dict[str, str], services: Services
) -> None:
    campaign = setup_campaign(client, admin)
    services.conversions.convert(record_click(services, campaign, "alice"), "bob")
    services.recorder.flush()
    ck = keys.campaign_keys(campaign["id"])
    redis = services.store.main
    # A data dir from before: the tree watch's cursor in the counters hash.
    redis.hset(ck.counters, "trees_cursor", "0-0")
    services.flagger.run(time.time())
    services.trees.run(time.time())
    cursors = redis.hgetall(ck.job_cursors)
    assert set(cursors) == {b"flagger_cursor", b"trees_cursor"}
    assert redis.hget(ck.counters, "trees_cursor") is None
    stats = client.get("/api/v1/campaigns/tea/stats", headers=admin)
    assert stats.status_code == 200, stats.json
    assert stats.json["clicks"] == 1 and stats.json["tree"]["participants"] == 2
    # A stray non-count in the counters (a marker, an old cursor) never fails the page.
    redis.hset(ck.counters, "flagger_cursor", "1795946214235-0")
    assert client.get("/api/v1/campaigns/tea/stats", headers=admin).status_code == 200


def test_a_corrected_fraud_decision_pays_back_within_budget(
    client: FlaskClient, admin: dict[str, str], services: Services, keys: dict[str, str]
) -> None:
    """A reviewer who takes back a fraud decision gets the flag and the money to agree: what the
    decision denied is credited again, unless another fraud decision is about it or the budget
    (or the sharer's cap) was spent meanwhile."""
    campaign = setup_campaign(client, admin, max_per_referrer=3)
    tea = services.campaigns.require("tea")
    convert_ = services.conversions.convert
    for user in ("s1", "s2", "s3"):
        convert_(record_click(services, campaign, "sharer"), user)
    flags = services.flags
    flag, _ = flags.raise_flag(
        campaign["id"], "tea", FlagCandidate("referrer", "sharer", 0.9, ("farm",)), 1.0
    )
    # s3 is also a participant that another reviewer decides fraud on its own.
    alt, _ = flags.raise_flag(
        campaign["id"], "tea", FlagCandidate("participant", "s3", 0.9, ("alt",)), 1.0
    )
    risk = bearer(keys["risk"])

    def decide(flag_id: str, decision: str) -> None:
        response = client.post(
            f"/api/v1/flags/{flag_id}/decision", json={"decision": decision}, headers=risk
        )
        assert response.status_code == 200, response.json

    def statuses() -> dict[str, str]:
        rows = client.get("/api/v1/rewards?campaign=tea", headers=admin).json["rewards"]
        return {r["user"]: r["status"] for r in rows}

    decide(flag.id, "fraud")
    decide(alt.id, "fraud")
    assert statuses() == {"s1": "denied", "s2": "denied", "s3": "denied"}
    assert services.rewards.budget(tea)["spent"] == 0
    decide(flag.id, "legit")
    # s3 stays denied: its own fraud decision stands.
    assert statuses() == {"s1": "credited", "s2": "credited", "s3": "denied"}
    budget = services.rewards.budget(tea)
    assert (budget["spent"], budget["held"], budget["left"]) == (2, 0, 98)
    restored = [
        e for e in services.rewards.ledger(campaign["id"]) if e["reason"] == "reviewed_legit"
    ]
    assert {(e["type"], e["user"], e["flag"]) for e in restored} == {
        ("credited", "s1", flag.id),
        ("credited", "s2", flag.id),
    }
    # Deciding legit again moves nothing more (exactly once).
    decide(flag.id, "legit")
    assert services.rewards.budget(tea)["spent"] == 2
    # Fraud again (credited rewards are clawed back), and meanwhile the freed budget goes to
    # another sharer: taken back again, the decision finds room for one reward, not two.
    decide(flag.id, "fraud")
    assert statuses() == {"s1": "clawed_back", "s2": "clawed_back", "s3": "denied"}
    services.campaigns.update("tea", {"reward": {"amount": 1, "budget_total": 3}}, "test")
    for user in ("o1", "o2"):
        answer = convert_(record_click(services, campaign, "other"), user).answer
        assert answer["reward"]["status"] == "credited"
    decide(flag.id, "legit")
    after = statuses()
    assert sorted(after[u] for u in ("s1", "s2")) == ["clawed_back", "credited"]
    budget = services.rewards.budget(services.campaigns.require("tea"))
    assert (budget["spent"], budget["left"]) == (3, 0)  # never over budget


def test_a_page_of_rewards_reads_that_page_only(
    client: FlaskClient,
    admin: dict[str, str],
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign = setup_campaign(client, admin)
    users = [f"p{n:02d}" for n in range(12)]
    for user in users:
        services.conversions.convert(record_click(services, campaign, "alice"), user)
    # Count the reward records each listing reads (Redis still answers every read).
    read: list[int] = []
    rows_of = RewardService._rows

    def counted(self: RewardService, ck: Any, wanted: list[str]) -> list[dict[str, Any]]:
        read.append(len(wanted))
        return rows_of(self, ck, wanted)

    monkeypatch.setattr(RewardService, "_rows", counted)
    seen: list[str] = []
    for offset in (0, 5, 10):
        page = client.get(
            f"/api/v1/rewards?campaign=tea&limit=5&offset={offset}", headers=admin
        ).json
        assert page["total"] == 12
        assert (page["limit"], page["offset"]) == (5, offset)  # echoed, as the flags' list
        seen += [row["user"] for row in page["rewards"]]
    assert seen == users[::-1]  # newest first, each once
    # Each row is what the OpenAPI document says a ledger entry is (not just "an object").
    document = openapi_document()
    listed = document["paths"]["/rewards"]["get"]["responses"]["200"]["content"]
    schema = {"allOf": [listed["application/json"]["schema"]], **document}
    jsonschema_rs.validator_for(schema).validate(page)
    assert read == [5, 5, 2]
    by_referrer = client.get(
        "/api/v1/rewards?campaign=tea&referrer=alice&limit=3&offset=9", headers=admin
    ).json
    assert [row["user"] for row in by_referrer["rewards"]] == ["p02", "p01", "p00"]
    assert by_referrer["total"] == 12 and read[-1] == 3
