"""The review queue: flags raised from recorded clicks, listed, decided, kept as labels."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway.flags import DecidedMeanwhile, FlagCandidate
from gateway.services import Services
from gateway.store import keys
from tests.conftest import BROWSER, bearer

SCRIPT = {"User-Agent": BROWSER["User-Agent"]}  # no Accept-Language: a script's habit


def click_from(client: FlaskClient, token: str, address: str, headers: dict[str, str]) -> int:
    client.delete_cookie("rg_vid")
    return client.get(
        f"/s/{token}", headers=headers, environ_base={"REMOTE_ADDR": address}
    ).status_code


def mint(client: FlaskClient, admin: dict[str, str], referrer: str) -> str:
    response = client.post(
        "/api/v1/campaigns/milk-tea/links", json={"referrer": referrer}, headers=admin
    )
    token: str = response.json["token"]
    return token


def test_a_referrer_drawing_suspicious_clicks_is_flagged_and_an_honest_one_is_not(
    client: FlaskClient, admin: dict[str, str], campaign: dict[str, Any], services: Services
) -> None:
    farm = mint(client, admin, "farmer")
    honest = mint(client, admin, "honest")
    for n in range(8):  # datacenter addresses (AWS 3.5.0.0/16), no Accept-Language
        assert click_from(client, farm, f"3.5.{n}.9", SCRIPT) == 302
    pauses = random.Random(3)
    for n in range(20):
        time.sleep(pauses.expovariate(200))  # people arrive irregularly (clockwork is a signal)
        assert click_from(client, honest, f"203.0.{n}.9", BROWSER) == 302
    services.recorder.flush()
    assert services.flagger.run(time.time()) == 1
    flags, total = services.flags.find([campaign["id"]])
    assert total == 1
    flag = flags[0]
    assert (flag.kind, flag.subject, flag.status) == ("referrer", "farmer", "open")
    assert flag.score >= 0.5 and "8 of 8 clicks suspicious" in flag.reasons[0]
    assert "network" in flag.reasons[0] and "headers" in flag.reasons[0]
    # Nothing new: nothing raised, the cursor moved on.
    assert services.flagger.run(time.time()) == 0


def test_one_open_flag_per_subject_and_decisions_stand(
    services: Services, campaign: dict[str, Any]
) -> None:
    raise_ = services.flags.raise_flag
    first, new = raise_(
        campaign["id"], "milk-tea", FlagCandidate("referrer", "x", 0.6, ("a",)), 1.0
    )
    assert new
    again, new = raise_(
        campaign["id"], "milk-tea", FlagCandidate("referrer", "x", 0.8, ("a", "b")), 2.0
    )
    assert not new and again.id == first.id
    assert again.score == 0.8 and again.reasons == ["a", "b"] and again.created_at == 1.0
    services.flags.decide(first.id, "legit", "a viral sharer", "apikey:risk", now=3.0)
    after, new = raise_(
        campaign["id"], "milk-tea", FlagCandidate("referrer", "x", 0.9, ("c",)), 4.0
    )
    assert not new and after.status == "legit" and after.score == 0.8


def test_a_decision_on_what_its_decider_saw_loses_to_one_taken_meanwhile(
    services: Services, campaign: dict[str, Any]
) -> None:
    """Two reviewers on one open flag: the first decision stands, the second (made on the open
    flag it saw) is refused with the flag as it now is, in the script that writes, so nothing of
    it is recorded. A reviewer correcting a decision they saw still can."""
    flag, _ = services.flags.raise_flag(
        campaign["id"], "milk-tea", FlagCandidate("referrer", "x", 0.6, ("a",)), 1.0
    )
    services.flags.decide(flag.id, "fraud", "farm", "user:ann", now=2.0, expect="open")
    with pytest.raises(DecidedMeanwhile) as refused:
        services.flags.decide(flag.id, "legit", "a fan", "user:bob", now=2.0, expect="open")
    assert refused.value.status == 409 and refused.value.flag.decided_by == "user:ann"
    now = services.flags.get(flag.id)
    assert now is not None and (now.status, now.note) == ("fraud", "farm")
    assert [d["decided_by"] for d in services.flags.decisions(campaign["id"])] == ["user:ann"]
    corrected = services.flags.decide(flag.id, "legit", "a fan", "user:bob", expect="fraud")
    assert corrected.status == "legit"


def test_raising_the_same_finding_again_writes_nothing_but_clusters_still_settle(
    services: Services, campaign: dict[str, Any]
) -> None:
    raise_ = services.flags.raise_flag
    calls: list[str] = []
    services.flags.raise_listeners.append(lambda _campaign, flag, _before: calls.append(flag.id))
    finding = FlagCandidate("referrer", "x", 0.6, ("a",), evidence={"hour": 5})
    first, _ = raise_(campaign["id"], "milk-tea", finding, 1.0)
    same, new = raise_(campaign["id"], "milk-tea", finding, 2.0)
    assert not new and same == first and same.updated_at == 1.0 and calls == [first.id]
    # New evidence from the same source, or another source: written, listeners told.
    changed, _ = raise_(
        campaign["id"], "milk-tea", FlagCandidate("referrer", "x", 0.7, ("a",)), 3.0
    )
    assert changed.score == 0.7 and changed.updated_at == 3.0 and len(calls) == 2
    other, _ = raise_(
        campaign["id"], "milk-tea", FlagCandidate("referrer", "x", 0.7, ("t",), source="tree"), 4.0
    )
    assert other.reasons == ["a", "t"] and len(calls) == 3
    # The same for a cluster, unless its campaign predates the amount-at-stake index (whose
    # cluster index lets convert.lua hold its members' new rewards): then it is settled again.
    cluster = FlagCandidate("cluster", "c1", 0.9, ("chain",), members=("p1", "p2"))
    raise_(campaign["id"], "milk-tea", cluster, 5.0)
    raise_(campaign["id"], "milk-tea", cluster, 6.0)
    assert len(calls) == 4
    services.store.main.hdel(keys.campaign_keys(campaign["id"]).counters, keys.STAKE_INDEXED)
    raise_(campaign["id"], "milk-tea", cluster, 7.0)
    assert len(calls) == 5


def test_review_api(
    client: FlaskClient, keys: dict[str, str], campaign: dict[str, Any], services: Services
) -> None:
    risk = bearer(keys["risk"])
    raise_ = services.flags.raise_flag
    low, _ = raise_(campaign["id"], "milk-tea", FlagCandidate("referrer", "low", 0.55, ("a",)), 1.0)
    high, _ = raise_(campaign["id"], "milk-tea", FlagCandidate("click", "1.abc", 0.95, ("b",)), 2.0)
    listed = client.get("/api/v1/flags?status=open", headers=risk).json
    assert [f["id"] for f in listed["flags"]] == [high.id, low.id] and listed["total"] == 2
    only_clicks = client.get("/api/v1/flags?kind=click&campaign=milk-tea", headers=risk).json
    assert [f["subject"] for f in only_clicks["flags"]] == ["1.abc"]
    assert (
        client.get("/api/v1/flags?limit=1&offset=1", headers=risk).json["flags"][0]["id"] == low.id
    )

    decided = client.post(
        f"/api/v1/flags/{low.id}/decision", json={"decision": "fraud", "note": "farm"}, headers=risk
    )
    assert decided.status_code == 200
    body = decided.json
    assert (
        body["status"] == "fraud"
        and body["note"] == "farm"
        and body["decided_by"] == "apikey:test-risk"
    )
    assert body["decided_at"] > 0
    # A second reviewer, deciding on the open flag they saw: refused, the first decision stands.
    late = client.post(
        f"/api/v1/flags/{low.id}/decision",
        json={"decision": "legit", "note": "fan", "expect": "open"},
        headers=risk,
    )
    assert late.status_code == 409 and late.json["error"] == "flag_decided_meanwhile"
    assert "decided fraud by apikey:test-risk" in late.json["message"]
    assert late.json["fields"] == {"expect": "the flag is fraud"}
    assert client.get(f"/api/v1/flags/{low.id}", headers=risk).json["status"] == "fraud"
    # Expecting a decision on a flag nobody decided (flags never reopen: the sender's expect
    # is wrong) is refused too, saying the flag is open, not "decided open by" nobody.
    wrong = client.post(
        f"/api/v1/flags/{high.id}/decision",
        json={"decision": "fraud", "expect": "legit"},
        headers=risk,
    )
    assert wrong.status_code == 409 and wrong.json["error"] == "flag_decided_meanwhile"
    assert wrong.json["message"] == (
        f"flag {high.id} is open (not decided), not legit: nothing was changed"
    )
    assert wrong.json["fields"] == {"expect": "the flag is open"}
    assert client.get(f"/api/v1/flags/{high.id}", headers=risk).json["status"] == "open"
    assert [
        f["id"] for f in client.get("/api/v1/flags?status=open", headers=risk).json["flags"]
    ] == [high.id]
    assert [
        f["id"] for f in client.get("/api/v1/flags?status=fraud", headers=risk).json["flags"]
    ] == [low.id]
    labels = services.flags.decisions(campaign["id"])
    assert [(d["subject"], d["decision"], d["decided_by"]) for d in labels] == [
        ("low", "fraud", "apikey:test-risk")
    ]


def test_review_api_bad_input(
    client: FlaskClient, keys: dict[str, str], campaign: dict[str, Any], services: Services
) -> None:
    risk = bearer(keys["risk"])
    flag, _ = services.flags.raise_flag(
        campaign["id"], "milk-tea", FlagCandidate("referrer", "r", 0.7, ("a",)), 1.0
    )
    for query, field in (
        ("status=closed", "status"),
        ("kind=robot", "kind"),
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("colour=red", "colour"),
    ):
        response = client.get(f"/api/v1/flags?{query}", headers=risk)
        assert response.status_code == 400, query
        assert field in response.json["fields"]
    assert client.get("/api/v1/flags?campaign=nope", headers=risk).status_code == 404
    for body, field in (
        ({"decision": "maybe"}, "decision"),
        ({}, "decision"),
        ({"decision": "fraud", "note": 5}, "note"),
    ):
        response = client.post(f"/api/v1/flags/{flag.id}/decision", json=body, headers=risk)
        assert response.status_code == 400, body
        assert field in response.json["fields"]
    assert services.flags.get(flag.id).status == "open"  # type: ignore[union-attr]
    for missing in (
        "nope",
        "1-zzzzzzzzzz",
        f"{flag.id[:-1]}0" if not flag.id.endswith("0") else f"{flag.id[:-1]}1",
    ):
        assert client.get(f"/api/v1/flags/{missing}", headers=risk).status_code == 404
        assert (
            client.post(
                f"/api/v1/flags/{missing}/decision", json={"decision": "fraud"}, headers=risk
            ).status_code
            == 404
        )


def test_pages_of_tied_scores_show_every_flag_once(
    services: Services, campaign: dict[str, Any]
) -> None:
    """Each campaign's index is read up to offset + limit, so the merged order must be the
    index's own (score, then flag id, descending) or pages past the first repeat flags."""
    other = services.campaigns.create(
        {"slug": "b", "name": "B", "destination_url": "https://shop.example.com/"}, "t"
    )
    for n in range(130):
        campaign_id, slug = (campaign["id"], "milk-tea") if n % 13 else (other.id, "b")
        score = 0.75 if n % 5 == 0 else 0.5
        services.flags.raise_flag(
            campaign_id, slug, FlagCandidate("referrer", f"r{n}", score, ("x",)), 1.0
        )
    ids = [campaign["id"], other.id]
    expected, total = services.flags.find(ids, status="open", limit=1000)
    pages = [services.flags.open_page(ids, limit=50, offset=o)[0] for o in (0, 50, 100)]
    shown = [flag for page in pages for flag in page]
    assert total == 130 and shown == expected and len({f.id for f in shown}) == 130
