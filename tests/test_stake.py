"""The amount-at-stake index: kept by the scripts that raise and decide flags and move rewards,
read by the review queue sorted by amount, rebuilt by ``refgate flags reindex``."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from gateway.flags import Flag, FlagCandidate, flag_id_for
from gateway.services import Services
from gateway.store import keys
from gateway.store.scripts import script
from tests.console_helpers import add_staff, login
from tests.test_conversions import record_click

EN = {"Accept-Language": "en"}
AMOUNT = 3


def make_campaign(services: Services, slug: str = "tea", amount: int = AMOUNT) -> dict[str, Any]:
    campaign = services.campaigns.create(
        {
            "slug": slug,
            "name": slug.title(),
            "destination_url": "https://shop.example.com/",
            "reward": {"amount": amount, "budget_total": 10_000},
        },
        "test",
    )
    return {"id": campaign.id, "slug": slug}


def convert(services: Services, doc: dict[str, Any], referrer: str, user: str) -> str:
    click_id = record_click(services, doc, referrer)
    services.conversions.convert(click_id, user)
    return click_id


def raise_(
    services: Services,
    doc: dict[str, Any],
    kind: str,
    subject: str,
    score: float = 0.7,
    members: tuple[str, ...] = (),
) -> Flag:
    flag, _ = services.flags.raise_flag(
        doc["id"], doc["slug"], FlagCandidate(kind, subject, score, ("test",), members), 1.0
    )
    return flag


def ledger_stake(services: Services, flag_id: str) -> int:
    """The amount at stake as the ledger has it: the credited and held rewards the flag's
    decision would move (RewardService.affected), read without the index."""
    flag = services.flags.get(flag_id)
    assert flag is not None
    campaign_id = int(flag.id.partition("-")[0], 16)
    rows = (
        services.rewards.get(campaign_id, u) for u in services.rewards.affected(campaign_id, flag)
    )
    return sum(r["amount"] for r in rows if r and r["status"] in ("credited", "held"))


def indexed(services: Services, flag: Flag) -> int:
    return services.flags.stakes([flag])[flag.id]


def statuses(services: Services, doc: dict[str, Any], *users: str) -> list[str]:
    return [services.rewards.get(doc["id"], u)["status"] for u in users]  # type: ignore[index]


def test_the_index_follows_hold_credit_and_clawback(services: Services) -> None:
    doc = make_campaign(services)
    convert(services, doc, "farmer", "p1")
    convert(services, doc, "farmer", "p2")
    flag = raise_(services, doc, "referrer", "farmer")  # holds both
    assert statuses(services, doc, "p1", "p2") == ["held", "held"]
    assert indexed(services, flag) == 2 * AMOUNT == ledger_stake(services, flag.id)
    convert(services, doc, "farmer", "p3")  # held: the sharer is flagged
    assert indexed(services, flag) == 3 * AMOUNT
    services.flags.decide(flag.id, "legit", "a fan", "t")  # released: credited, still at stake
    assert statuses(services, doc, "p1", "p2", "p3") == ["credited"] * 3
    assert indexed(services, flag) == 3 * AMOUNT == ledger_stake(services, flag.id)
    page, total, _ = services.flags.by_stake([doc["id"]], status="open", limit=10, offset=0)
    assert (page, total) == ([], 0)  # decided: out of the open index
    services.flags.decide(flag.id, "fraud", "it was a farm after all", "t")  # clawed back
    assert statuses(services, doc, "p1", "p2", "p3") == ["clawed_back"] * 3
    assert indexed(services, flag) == 0 == ledger_stake(services, flag.id)
    page, total, stake = services.flags.by_stake([doc["id"]], status="fraud", limit=10, offset=0)
    assert [f.id for f in page] == [flag.id] and total == 1 and stake == {flag.id: 0}
    services.flags.decide(flag.id, "legit", "a fan after all", "t")  # paid back: at stake again
    assert statuses(services, doc, "p1", "p2", "p3") == ["credited"] * 3
    assert indexed(services, flag) == 3 * AMOUNT == ledger_stake(services, flag.id)


def test_click_flags_are_worth_their_conversion(services: Services) -> None:
    doc = make_campaign(services)
    # Flagged after the conversion: the raise finds it (and holds it).
    after = convert(services, doc, "alice", "p1")
    late = raise_(services, doc, "click", after)
    assert statuses(services, doc, "p1") == ["held"]
    assert indexed(services, late) == AMOUNT == ledger_stake(services, late.id)
    # Flagged before the conversion: the conversion adds to it (held because of the flag).
    before = record_click(services, doc, "alice")
    early = raise_(services, doc, "click", before)
    assert indexed(services, early) == 0
    services.conversions.convert(before, "p2")
    assert statuses(services, doc, "p2") == ["held"]
    assert indexed(services, early) == AMOUNT == ledger_stake(services, early.id)
    # A click without a conversion has nothing at stake; a fraud decision takes it out.
    idle = raise_(services, doc, "click", record_click(services, doc, "alice"))
    assert indexed(services, idle) == 0
    services.flags.decide(early.id, "fraud", "", "t")
    assert statuses(services, doc, "p2") == ["denied"] and indexed(services, early) == 0
    # The referrer's flag counts both clicks' rewards; the denied one no more.
    sharer = raise_(services, doc, "referrer", "alice")
    assert indexed(services, sharer) == AMOUNT == ledger_stake(services, sharer.id)


def test_a_click_converting_while_it_is_flagged_is_not_lost(services: Services) -> None:
    """raise_flag.lua is given the click's conversions as the caller read them; when one came
    in meanwhile it writes nothing and asks again (FlagService.raise_flag retries)."""
    doc = make_campaign(services)
    click = record_click(services, doc, "alice")
    flag_id = flag_id_for(doc["id"], "click", click)
    ck = keys.campaign_keys(doc["id"])
    services.conversions.convert(click, "p1")  # after the caller read '' (no conversion)
    reply = script("raise_flag")(
        services.store.main,
        [ck.flag(flag_id), ck.flags_all, ck.flags_open, ck.outbox, ck.flags_stake,
         ck.flags_stake_open, ck.cluster_index, ck.click_conversions],
        [flag_id, doc["slug"], "click", click, "0.9", "[]", "[]", "{}", "1.0", "{}", 0, ""],
    )  # fmt: skip
    assert reply == [0, b"retry"] and services.flags.get(flag_id) is None
    assert services.store.main.zscore(ck.flags_stake, flag_id) is None
    flag = raise_(services, doc, "click", click)
    assert flag.id == flag_id and indexed(services, flag) == AMOUNT


def test_participant_and_cluster_flags_count_each_reward_once(services: Services) -> None:
    doc = make_campaign(services)
    convert(services, doc, "boss", "m1")  # m1's own reward: at stake in the cluster
    convert(services, doc, "m1", "m2")  # referred by a member and a member: once
    convert(services, doc, "m2", "x1")
    convert(services, doc, "outsider", "x2")
    person = raise_(services, doc, "participant", "x2")
    assert indexed(services, person) == AMOUNT == ledger_stake(services, person.id)
    cluster = raise_(services, doc, "cluster", "browser:b1", members=("m1", "m2"))
    assert indexed(services, cluster) == 3 * AMOUNT == ledger_stake(services, cluster.id)
    convert(services, doc, "m1", "x3")  # a member's new referral joins the cluster's stake
    assert indexed(services, cluster) == 4 * AMOUNT == ledger_stake(services, cluster.id)
    # The cluster grows: the new member's referrals count from now on.
    convert(services, doc, "m3", "x4")
    raise_(services, doc, "cluster", "browser:b1", members=("m3",))
    assert indexed(services, cluster) == 5 * AMOUNT == ledger_stake(services, cluster.id)
    services.flags.decide(cluster.id, "fraud", "", "t")
    assert indexed(services, cluster) == 0 == ledger_stake(services, cluster.id)
    assert indexed(services, person) == AMOUNT  # not in the cluster: untouched


def test_the_index_agrees_with_the_ledger_after_random_work(services: Services) -> None:
    rng = random.Random(11)
    doc = make_campaign(services, amount=2)
    people = [f"u{n}" for n in range(24)]
    joined: list[str] = []
    clicks: list[str] = []
    flags: list[Flag] = []
    for step in range(90):
        action = rng.random()
        if action < 0.45:
            referrer = rng.choice(joined[-8:] or ["root"])
            fresh = [p for p in people if p not in joined and p != referrer]
            if fresh:
                user = rng.choice(fresh)
                clicks.append(convert(services, doc, referrer, user))
                joined.append(user)
        elif action < 0.55:
            clicks.append(record_click(services, doc, rng.choice(joined or ["root"])))
        elif action < 0.85:
            kind = rng.choice(["click", "referrer", "participant", "cluster"])
            if kind == "click" and clicks:
                flags.append(raise_(services, doc, kind, rng.choice(clicks), rng.random()))
            elif kind == "cluster" and joined:
                members = tuple(rng.sample(joined, min(len(joined), 3)))
                flags.append(
                    raise_(services, doc, kind, f"c{step % 4}", rng.random(), members=members)
                )
            elif joined:
                flags.append(raise_(services, doc, kind, rng.choice(joined), rng.random()))
        elif flags:
            services.flags.decide(rng.choice(flags).id, rng.choice(["fraud", "legit"]), "", "t")
    assert len(flags) > 15
    every, total, stake = services.flags.by_stake([doc["id"]], limit=1000, offset=0)
    assert total == len({f.id for f in flags}) == len(every)
    assert stake == {f.id: ledger_stake(services, f.id) for f in every}
    assert sum(stake.values()) > 0
    order = [(stake[f.id], f.score) for f in every]
    assert order == sorted(order, reverse=True)
    for flag in every:
        assert flag == services.flags.get(flag.id)


@pytest.fixture
def risk(app: Flask, services: Services) -> Any:
    add_staff(services)
    client = app.test_client()
    assert login(client, "risk").status_code == 302
    return client


def rows(html: str) -> list[tuple[str, str, int]]:
    """(flag id, kind, amount at stake) of each row of the review queue, in order."""
    found = re.findall(
        r'<a href="/console/flags/([0-9a-f]+-[0-9a-f]{10})(?:\?back=[^"]*)?">.*?</td>\s*<td>[^<]*</td><td>(\w+)</td>'
        r'<td>[^<]*</td>\s*<td class="num">[0-9.]+</td><td class="num">(\d+)</td>',
        html,
        re.S,
    )
    return [(flag_id, kind, int(amount)) for flag_id, kind, amount in found]


def seeded_queue(services: Services) -> dict[str, Flag]:
    """Two campaigns' flags of every kind with different amounts at stake and scores."""
    tea, coffee = make_campaign(services), make_campaign(services, "coffee", amount=5)
    for n in range(4):
        convert(services, tea, "big", f"b{n}")  # 4 x 3
    convert(services, tea, "small", "s0")  # 3
    click = convert(services, coffee, "bean", "k0")  # 5
    convert(services, coffee, "bean", "k1")
    return {
        "big": raise_(services, tea, "referrer", "big", 0.55),
        "small": raise_(services, tea, "referrer", "small", 0.95),
        "nobody": raise_(services, tea, "referrer", "nobody", 0.99),
        "s0": raise_(services, tea, "participant", "s0", 0.6),  # 3, below "small" by score
        "click": raise_(services, coffee, "click", click, 0.8),  # 5
        "bean": raise_(services, coffee, "referrer", "bean", 0.4),  # 10
        "ring": raise_(services, coffee, "cluster", "ring:1", 0.7, members=("k0", "k1")),  # 10
    }


def test_the_queue_sorts_by_amount_with_every_filter(risk: Any, services: Services) -> None:
    flags = seeded_queue(services)
    ids = {flag.id: name for name, flag in flags.items()}

    # Each row: the flag, its kind as the queue shows it (a referrer flag reads "sharer"), and
    # its amount at stake.
    def queue(query: str = "") -> list[tuple[str, str, int]]:
        page = risk.get(f"/console/flags?sort=amount{query}", headers=EN)
        assert page.status_code == 200, page.text
        return [(ids[flag_id], kind, amount) for flag_id, kind, amount in rows(page.text)]

    assert queue() == [
        ("big", "sharer", 12),
        ("ring", "cluster", 10),  # 10 and 10: by score
        ("bean", "sharer", 10),
        ("click", "click", 5),
        ("small", "sharer", 3),
        ("s0", "participant", 3),
        ("nobody", "sharer", 0),
    ]
    assert [name for name, *_ in queue("&campaign=coffee")] == ["ring", "bean", "click"]
    assert queue("&kind=click") == [("click", "click", 5)]
    assert [name for name, *_ in queue("&min_score=0.6")] == [
        "ring", "click", "small", "s0", "nobody"
    ]  # fmt: skip
    services.flags.decide(flags["big"].id, "fraud", "", "t")
    services.flags.decide(flags["small"].id, "legit", "", "t")
    assert [name for name, *_ in queue()] == ["ring", "bean", "click", "s0", "nobody"]
    assert queue("&status=fraud") == [("big", "sharer", 0)]
    assert queue("&status=legit&kind=referrer") == [("small", "sharer", 3)]
    everything = queue("&status=")
    assert [name for name, *_ in everything][:3] == ["ring", "bean", "click"]
    assert len(everything) == 7 and ("big", "sharer", 0) in everything
    # Other sorts show the same amounts, from the index.
    by_score = risk.get("/console/flags?kind=click", headers=EN).text
    assert [amount for *_, amount in rows(by_score)] == [5]


def test_the_queue_pages_by_amount_across_campaigns(risk: Any, services: Services) -> None:
    tea, coffee = make_campaign(services, amount=1), make_campaign(services, "coffee", amount=1)
    for n in range(60):
        doc = tea if n % 2 else coffee
        if n % 3 == 0:
            convert(services, doc, f"r{n}", f"p{n}")
        raise_(services, doc, "referrer", f"r{n}", (n % 4) / 4)  # ties on amount and score
    first = rows(risk.get("/console/flags?sort=amount", headers=EN).text)
    second_page = risk.get("/console/flags?sort=amount&page=2", headers=EN).text
    second = rows(second_page)
    assert "60 flags" in second_page and (len(first), len(second)) == (50, 10)
    shown = [flag_id for flag_id, *_ in first + second]
    assert len(set(shown)) == 60
    scores = [services.flags.get(flag_id).score for flag_id in shown]  # type: ignore[union-attr]
    order = [(amount, score) for (_, _, amount), score in zip(first + second, scores, strict=True)]
    assert order == sorted(order, reverse=True) and order[0][0] == 1 and order[-1][0] == 0


def test_reindex_builds_the_index_of_older_flags(
    risk: Any, services: Services, runner: FlaskCliRunner
) -> None:
    flags = seeded_queue(services)
    redis = services.store.main
    expected = rows(risk.get("/console/flags?sort=amount", headers=EN).text)
    # As a campaign created before the index: no index, no click conversions, no mark.
    for campaign_id in {int(f.id.partition("-")[0], 16) for f in flags.values()}:
        ck = keys.campaign_keys(campaign_id)
        redis.delete(ck.flags_stake, ck.flags_stake_open, ck.cluster_index, ck.click_conversions)
        redis.hdel(ck.counters, keys.STAKE_INDEXED)
    legacy = rows(risk.get("/console/flags?sort=amount", headers=EN).text)
    assert {flag_id for flag_id, *_ in legacy} == {flag_id for flag_id, *_ in expected}
    assert {i: a for i, _, a in legacy}[flags["click"].id] == 0  # what it could not see
    result = runner.invoke(args=["flags", "reindex"])
    assert result.exit_code == 0, result.output
    assert "tea: 4 flags indexed" in result.output and "coffee: 3 flags" in result.output
    assert rows(risk.get("/console/flags?sort=amount", headers=EN).text) == expected
    again = runner.invoke(args=["flags", "reindex", "--campaign", "tea"])
    assert again.exit_code == 0 and "coffee" not in again.output
    assert rows(risk.get("/console/flags?sort=amount", headers=EN).text) == expected
    for slug in ("nope", ""):
        bad = runner.invoke(args=["flags", "reindex", "--campaign", slug])
        assert bad.exit_code == 2 and f"no campaign {slug!r}" in bad.output, slug


def test_the_api_lists_flags_by_amount_at_stake(
    client: Any, admin: dict[str, str], services: Services
) -> None:
    tea = make_campaign(services, amount=2)
    for n in range(6):
        for m in range(n % 3):  # referrer r<n> has n % 3 referrals: 0, 2 or 4 at stake
            convert(services, tea, f"r{n}", f"p{n}-{m}")
        raise_(services, tea, "referrer", f"r{n}", score=0.5 + n / 100)
    by_amount = client.get("/api/v1/flags?campaign=tea&sort=amount&limit=4", headers=admin)
    assert by_amount.status_code == 200, by_amount.json
    shown = [(f["subject"], f["amount_at_stake"]) for f in by_amount.json["flags"]]
    # Highest amount first, then highest score: r5 and r2 hold 4, r4 and r1 hold 2.
    assert shown == [("r5", 4), ("r2", 4), ("r4", 2), ("r1", 2)]
    assert by_amount.json["total"] == 6
    rest = client.get("/api/v1/flags?campaign=tea&sort=amount&offset=4", headers=admin).json
    assert [(f["subject"], f["amount_at_stake"]) for f in rest["flags"]] == [("r3", 0), ("r0", 0)]
    by_score = client.get("/api/v1/flags?campaign=tea", headers=admin).json["flags"]
    assert [f["subject"] for f in by_score] == ["r5", "r4", "r3", "r2", "r1", "r0"]
    assert {f["subject"]: f["amount_at_stake"] for f in by_score}["r4"] == 2
    bad = client.get("/api/v1/flags?sort=size", headers=admin)
    assert bad.status_code == 400 and bad.json["error"] == "invalid_sort"
    # A campaign from before the index: sorting by amount asks for the reindex.
    services.store.main.hdel(keys.campaign_keys(tea["id"]).counters, keys.STAKE_INDEXED)
    missing = client.get("/api/v1/flags?campaign=tea&sort=amount", headers=admin)
    assert missing.status_code == 409 and missing.json["error"] == "stake_index_missing"
    unindexed = client.get("/api/v1/flags?campaign=tea", headers=admin).json["flags"]
    assert {f["amount_at_stake"] for f in unindexed} == {None}
