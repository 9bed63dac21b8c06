"""One person across every campaign: the people service (on every store) and the console's
people search and the person page's other campaigns."""

from __future__ import annotations

import fnmatch
import re

import jsonschema_rs
import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.errors import ApiError
from gateway.flags import FlagCandidate, flag_id_for
from gateway.services import Services
from gateway.store import keys
from tests.conftest import bearer
from tests.console_helpers import add_staff, as_role
from tests.test_console import a_sharers_story
from tests.test_conversions import record_click

EN = {"Accept-Language": "en"}


def second_campaign(services: Services) -> dict[str, object]:
    """``coffee``: farmer has links there, revoked, a referrer flag decided fraud, and invited
    one person whose reward is credited before the flag; ``p1`` of tea joined there too."""
    campaign = services.campaigns.create(
        {
            "slug": "coffee",
            "name": "Coffee",
            "destination_url": "https://shop.example.com/",
            "reward": {"amount": 3, "budget_total": 100},
        },
        "test",
    )
    doc = {"id": campaign.id, "slug": "coffee"}
    services.conversions.convert(record_click(services, doc, "farmer"), "p1")
    services.flags.raise_flag(
        campaign.id, "coffee", FlagCandidate("referrer", "farmer", 0.9, ("review",)), 2.0
    )
    services.links.revoke(campaign, "farmer")
    services.campaigns.create(
        {"slug": "juice", "name": "Juice", "destination_url": "https://shop.example.com/"},
        "test",
    )
    return doc


def test_a_person_is_found_in_every_campaign_that_knows_them(services: Services) -> None:
    """Each campaign where the name has a tree node, links, a flag or a reward, read by key; the
    campaigns that do not know them are left out, and an unknown name is in none."""
    a_sharers_story(services)
    second_campaign(services)
    found = {a.campaign.slug: a for a in services.people.everywhere("farmer")}
    assert sorted(found) == ["coffee", "tea"]  # juice never heard of them
    tea, coffee = found["tea"], found["coffee"]
    # In tea: invited by root (depth 1), invited five, links active; their participant flag
    # and the ring cluster they are a member of; rewards for their invitations: 2 credited
    # (p1, p5, 2 units each), 1 held (p2); their own reward held by their flags.
    assert (tea.depth, tea.invited, tea.links) == (1, 5, "active")
    assert tea.flags == {"participant": "open"} and tea.clusters == 1
    assert (tea.credited, tea.held) == (4, 2)
    assert tea.own_reward == "held"
    assert tea.joined is not None and tea.joined > 0
    # In coffee: a first sharer (the root of their own tree), links revoked, their referrer flag
    # open, p1's reward held by it; no reward of their own.
    assert (coffee.depth, coffee.invited, coffee.links) == (0, 1, "revoked")
    assert coffee.flags == {"referrer": "open"} and coffee.clusters == 0
    assert (coffee.credited, coffee.held, coffee.own_reward) == (0, 3, None)
    # A participant of both, found in both; a name no campaign knows, in none.
    p1 = {a.campaign.slug: a for a in services.people.everywhere("p1")}
    assert sorted(p1) == ["coffee", "tea"] and p1["coffee"].depth == 1
    assert p1["tea"].own_reward == "credited" and p1["coffee"].own_reward == "held"
    assert services.people.everywhere("nobody") == []
    # A cluster member who never joined is known through the cluster index; their links are as
    # the click path sees them (the ring's feedback gave them a number: links would work).
    mole = services.people.everywhere("mole")
    assert [(a.campaign.slug, a.depth, a.links, a.clusters) for a in mole] == [
        ("tea", None, "active", 1)
    ]


def test_the_console_finds_a_person_across_campaigns(app: Flask, services: Services) -> None:
    """Every staff role may search; each campaign that knows them is a row leading to their page
    there; the search is in the menu."""
    add_staff(services)
    a_sharers_story(services)
    second_campaign(services)
    for role in ("marketing", "risk", "admin"):
        client = as_role(app, role)
        assert (
            'href="/console/people">People</a>' in client.get("/console/campaigns", headers=EN).text
        )
        page = client.get("/console/people?name=farmer", headers=EN)
        assert page.status_code == 200, role
        text = page.text
        assert "<h2>Campaigns that know them (2)</h2>" in text, role
        assert 'value="farmer"' in text
        tea = text[text.index('id="in-tea"') : text.index("</tr>", text.index('id="in-tea"'))]
        assert '<a href="/console/campaigns/tea/people/farmer">Tea</a>' in tea
        assert "<td>depth 1, invited 5</td>" in tea
        assert '<span class="status status-ok">active</span>' in tea
        assert 'as a participant: <span class="status status-open">open</span>' in tea
        assert "member of 1 clusters" in tea
        assert "<td>4 units credited, 2 held</td>" in tea
        coffee = text[text.index('id="in-coffee"') :]
        assert '<a href="/console/campaigns/coffee/people/farmer">Coffee</a>' in coffee
        assert "<td>a first sharer, invited 1</td>" in coffee and "status-revoked" in coffee
        assert "<td>0 units credited, 3 held</td>" in coffee
        assert 'as a sharer: <span class="status status-open">open</span>' in coffee
        assert 'id="in-juice"' not in text
    assert as_role(app, "anonymous").get("/console/people?name=farmer").status_code == 302
    client = as_role(app, "risk")
    # The page without a name is the search form alone.
    empty = client.get("/console/people", headers=EN).text
    assert 'id="person-name"' in empty and 'id="found"' not in empty
    nobody = client.get("/console/people?name=nobody", headers=EN)
    assert nobody.status_code == 200 and 'id="nobody"' in nobody.text
    assert "No campaign knows nobody" in nobody.text
    # In Chinese, with Chinese punctuation.
    zh = client.get("/console/people?name=farmer", headers={"Accept-Language": "zh-CN"}).text
    assert "<h2>认识此人的活动（2）</h2>" in zh
    assert '作为参与者：<span class="status status-open">待审核</span>' in zh
    assert "Campaigns that know them" not in zh


def test_a_bad_name_is_a_400_that_keeps_what_was_typed(app: Flask, services: Services) -> None:
    """A name no campaign could hold (a space, a slash, too long) is said beside the field; the
    form keeps it, and nothing is read."""
    add_staff(services)
    client = as_role(app, "risk")
    for bad in ("far mer", "a/b", "x" * 129, "café", "张三", "<script>"):
        response = client.get("/console/people", query_string={"name": bad}, headers=EN)
        assert response.status_code == 400, bad
        assert 'role="alert" id="name-problem"' in response.text
        assert "ASCII letters (A-Z, a-z), digits (0-9) and . _ : @ + -" in response.text
        assert 'aria-invalid="true"' in response.text and 'id="found"' not in response.text
    assert "&lt;script&gt;" in response.text and "<script>" not in response.text.split("<main")[-1]
    # Spaces around a pasted id are not part of it.
    a_sharers_story(services)
    padded = client.get("/console/people", query_string={"name": " farmer "}, headers=EN)
    assert padded.status_code == 200 and "Campaigns that know them (1)" in padded.text


def test_a_persons_page_lists_the_other_campaigns_that_know_them(
    app: Flask, services: Services
) -> None:
    add_staff(services)
    a_sharers_story(services)
    client = as_role(app, "risk")
    alone = client.get("/console/campaigns/tea/people/farmer", headers=EN).text
    assert "<h2>In other campaigns (0)</h2>" in alone and "No other campaign knows them." in alone
    second_campaign(services)
    page = client.get("/console/campaigns/tea/people/farmer", headers=EN).text
    elsewhere = page[page.index('id="elsewhere"') :]
    assert "<h2>In other campaigns (1)</h2>" in elsewhere
    assert '<a href="/console/campaigns/coffee/people/farmer">Coffee</a>' in elsewhere
    assert 'id="in-tea"' not in elsewhere  # the campaign of the page is not repeated
    back = client.get("/console/campaigns/coffee/people/farmer", headers=EN).text
    assert '<a href="/console/campaigns/tea/people/farmer">Tea</a>' in back


def test_a_persons_rewards_name_the_open_flags_that_would_move_them(
    app: Flask, services: Services
) -> None:
    """Beside each credited or held reward, the open flags whose decision would still move it
    (its participant's, its click's, its referrer's, and clusters listing either): the risk team
    sees why a referral is held and where to decide it; marketing sees the kinds without links."""
    add_staff(services)
    _, ids = a_sharers_story(services)
    campaign_id = services.campaigns.require("tea").id
    p2 = services.flags.get(flag_id_for(campaign_id, "participant", "p2"))
    assert p2 is not None and p2.status == "open"
    page = as_role(app, "risk").get("/console/campaigns/tea/people/farmer", headers=EN).text

    def cell(table: str, user: str) -> str:
        rows = page[page.index(f'id="{table}"') :]
        row = rows[rows.index(f">{user}</a>") :]
        return row[: row.index("</tr>")].rsplit('<td class="text">', 1)[1]

    def link(flag_id: str, kind: str) -> str:
        return f'<a href="/console/flags/{flag_id}">{kind}</a>'

    # Their own reward, held: their participant flag, the click they joined through, the ring.
    assert cell("own-reward", "root") == (
        f"{link(ids['participant'], 'participant')}, {link(ids['click'], 'click')}, "
        f"{link(ids['cluster'], 'cluster')}</td>"
    )
    # p2's, held by p2's own flag, and at stake in the ring farmer is a member of; p1's,
    # credited, only in the ring; p3's denied and p4's clawed back: nothing left to decide.
    assert cell("referred", "p2") == (
        f"{link(p2.id, 'participant')}, {link(ids['cluster'], 'cluster')}</td>"
    )
    assert cell("referred", "p1") == f"{link(ids['cluster'], 'cluster')}</td>"
    assert cell("referred", "p3") == "</td>" and cell("referred", "p4") == "</td>"
    # Two flags of a kind are told apart by number.
    burst, _ = services.flags.raise_flag(
        campaign_id,
        "tea",
        FlagCandidate("cluster", "burst:farmer", 0.7, ("burst",), members=("farmer", "x")),
        2.0,
    )
    page = as_role(app, "risk").get("/console/campaigns/tea/people/farmer", headers=EN).text
    assert cell("referred", "p1") == (
        f"{link(ids['cluster'], 'cluster')}, {link(burst.id, 'cluster 2')}</td>"
    )
    # Decided, a flag is no longer at stake.
    services.flags.decide(ids["cluster"], "legit", "", "test")
    services.flags.decide(burst.id, "legit", "", "test")
    page = as_role(app, "risk").get("/console/campaigns/tea/people/farmer", headers=EN).text
    assert cell("referred", "p1") == "</td>"
    # Marketing sees the kinds, without the flags' pages.
    marketing = as_role(app, "marketing").get("/console/campaigns/tea/people/farmer", headers=EN)
    page = marketing.text
    assert cell("referred", "p2") == "participant</td>" and "/console/flags/" not in page


def test_the_api_finds_a_person_across_campaigns(
    client: FlaskClient, services: Services, keys: dict[str, str]
) -> None:
    """``GET /api/v1/people/<person>``: the console's lookup for support tools, in the shape
    the OpenAPI document gives; readers only; a name no campaign could hold is a 400."""
    a_sharers_story(services)
    second_campaign(services)
    response = client.get("/api/v1/people/farmer", headers=bearer(keys["risk"]))
    assert response.status_code == 200
    body = response.json
    assert body is not None and body["person"] == "farmer"
    by_slug = {c["campaign"]: c for c in body["campaigns"]}
    assert sorted(by_slug) == ["coffee", "tea"]
    assert by_slug["tea"] == {
        "campaign": "tea",
        "depth": 1,
        "joined": by_slug["tea"]["joined"],
        "invited": 5,
        "links": "active",
        "flags": {"participant": "open"},
        "clusters": 1,
        "rewards": {
            "credited": 4,
            "held": 2,
            "conversions": by_slug["tea"]["rewards"]["conversions"],
        },
        "own_reward": "held",
    }
    assert isinstance(by_slug["tea"]["joined"], float)
    coffee = by_slug["coffee"]
    assert (coffee["depth"], coffee["links"], coffee["own_reward"]) == (0, "revoked", None)
    document = client.get("/api/v1/openapi.json").json
    assert document is not None
    operation = document["paths"]["/people/{person}"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})
    validator.validate(body)
    nobody = client.get("/api/v1/people/nobody", headers=bearer(keys["marketing"]))
    assert nobody.status_code == 200 and nobody.json == {"person": "nobody", "campaigns": []}
    validator.validate(nobody.json)
    # Bad input: a clear 400 naming the field; the wrong key or none, 403 and 401.
    for bad_name in ("far%20mer", "farmer%0A"):  # a final newline too ("$" lets one by)
        bad = client.get(f"/api/v1/people/{bad_name}", headers=bearer(keys["risk"]))
        assert bad.status_code == 400 and bad.json is not None, bad_name
        assert bad.json["error"] == "validation_failed" and "person" in bad.json["fields"]
    assert client.get("/api/v1/people/farmer?x=1", headers=bearer(keys["risk"])).status_code == 400
    assert (
        client.get("/api/v1/people/farmer", headers=bearer(keys["conversion"])).status_code == 403
    )
    assert client.get("/api/v1/people/farmer").status_code == 401


def test_an_id_with_a_final_newline_is_no_sharer(services: Services) -> None:
    """The id pattern ends in "$", which in Python also matches before a final newline: ids are
    checked whole, so "alice\\n" is refused rather than minted as a second alice."""
    campaign = services.campaigns.create(
        {"slug": "tea", "name": "Tea", "destination_url": "https://shop.example.com/"}, "test"
    )
    services.links.mint(campaign, "alice")
    with pytest.raises(ApiError) as refused:
        services.links.mint(campaign, "alice\n")
    assert refused.value.status == 400 and "referrer" in (refused.value.fields or {})


def test_a_heavy_sharers_totals_count_every_reward_not_the_listed_ones(
    app: Flask, services: Services
) -> None:
    """The person page listed a referrer's latest 200 rewards and summed those: a sharer whose
    older rewards were held, denied or clawed back showed none of them. The totals are every
    reward's, read from counters kept where rewards move, and the same for a referrer counted
    once from the ledger (rewards from before those counters)."""
    add_staff(services)
    campaign = services.campaigns.create(
        {
            "slug": "bulk",
            "name": "Bulk",
            "destination_url": "https://shop.example.com/",
            "reward": {"amount": 2, "budget_total": 10_000},
        },
        "test",
    )
    doc = {"id": campaign.id, "slug": "bulk"}
    for n in range(10):
        services.conversions.convert(record_click(services, doc, "heavy"), f"old{n}")

    def participant_flag(user: str) -> str:
        flag, _ = services.flags.raise_flag(
            campaign.id, "bulk", FlagCandidate("participant", user, 0.8, ("review",)), 2.0
        )
        return flag.id

    for n in range(4):  # held, released, then clawed back
        flag_id = participant_flag(f"old{n}")
        services.flags.decide(flag_id, "legit", "", "test")
        services.flags.decide(flag_id, "fraud", "", "test")
    for n in range(4, 7):  # held, then denied
        services.flags.decide(participant_flag(f"old{n}"), "fraud", "", "test")
    for n in range(7, 9):  # held while open
        participant_flag(f"old{n}")
    for n in range(215):  # newer than all of them: the 200 listed are all credited
        services.conversions.convert(record_click(services, doc, "heavy"), f"new{n}")

    expected = [
        ("credited", "216", "432"),  # old9 and the 215 new
        ("held", "2", "4"),
        ("denied", "3", "6"),
        ("clawed_back", "4", "8"),
    ]

    def totals() -> list[tuple[str, str, str]]:
        page = as_role(app, "risk").get("/console/campaigns/bulk/people/heavy", headers=EN).text
        assert "<h2>Rewards for the people they invited (225)</h2>" in page
        assert page.count('<td><a href="/console/campaigns/bulk/people/new') == 200
        assert "The totals above count all 225 rewards; the latest 200 are listed below." in page
        table = page[page.index('id="totals"') : page.index('id="referred"')]
        return re.findall(
            r'status-(\w+)">[^<]+</span></td><td class="num">(\d+)</td>'
            r'<td class="num">(\d+)</td>',
            table,
        )

    assert totals() == expected
    # A referrer from before the denied and clawed back units were kept: counted once.
    rref = keys.campaign_keys(campaign.id).referrer_rewards("heavy")
    redis = services.store.main
    redis.hdel(rref, "units_kept", "denied", "clawed_back")
    assert totals() == expected
    assert redis.hmget(rref, "units_kept", "denied", "clawed_back") == [b"1", b"6", b"8"]
    # Kept from then on: a review taking back its fraud decision gives the units back.
    services.flags.decide(flag_id_for(campaign.id, "participant", "old0"), "legit", "", "test")
    assert redis.hmget(rref, "denied", "clawed_back") == [b"6", b"6"]


def test_a_lookup_reads_only_the_campaigns_that_numbered_the_name(services: Services) -> None:
    """Each sharer and participant is indexed by name when a campaign first numbers them
    (minting, joining), and a lookup reads those campaigns only, not every one (O(campaigns)
    reads per lookup before)."""
    a_sharers_story(services)
    coffee = second_campaign(services)
    tea = services.campaigns.require("tea")
    for n in range(20):  # campaigns that never heard of them
        services.campaigns.create(
            {"slug": f"x{n}", "name": f"X{n}", "destination_url": "https://shop.example.com/"},
            "test",
        )
    redis = services.store.main
    indexed = {
        name: {int(i) for i in redis.smembers(keys.person_campaigns(name))}
        for name in ("farmer", "p1", "p2", "mole", "nobody")
    }
    assert indexed == {
        "farmer": {tea.id, coffee["id"]},
        "p1": {tea.id, coffee["id"]},
        "p2": {tea.id},
        "mole": {tea.id},
        "nobody": set(),
    }
    # The index is what is read: a campaign left out of it is not looked at.
    redis.srem(keys.person_campaigns("farmer"), coffee["id"])
    assert [a.campaign.slug for a in services.people.everywhere("farmer")] == ["tea"]
    assert services.people.everywhere("farmer", besides=tea.id) == []


def test_a_store_from_before_the_index_reads_every_campaign_until_reindexed(
    app: Flask, services: Services
) -> None:
    """Upgraded stores have no index: lookups read every campaign as before, and `refgate
    people reindex` indexes every sharer and participant once (numbered or only in the tree:
    joins from before joins were numbered), then lookups use it."""
    a_sharers_story(services)
    coffee = second_campaign(services)
    tea = services.campaigns.require("tea")
    redis = services.store.main
    before = {a.campaign.slug: a for a in services.people.everywhere("p1")}
    # As an older version left it: no index, and p3 joined tea without a number.
    redis.delete(keys.PEOPLE_INDEXED, *redis.scan_iter(match=keys.person_campaigns("*")))
    redis.hdel(keys.campaign_keys(tea.id).referrer_index, "p3")
    assert {a.campaign.slug: a for a in services.people.everywhere("p1")} == before
    assert [a.campaign.slug for a in services.people.everywhere("p3")] == ["tea"]

    result = app.test_cli_runner().invoke(args=["people", "reindex"])
    assert result.exit_code == 0, result.output
    # p1 in two campaigns, p2 and p3 in tea (p3 found by its node alone), their invitees...
    added = int(result.output.split()[0])
    assert added >= 4 and result.output.endswith("pairs added to the people index\n")
    assert redis.get(keys.PEOPLE_INDEXED) == b"1"
    assert redis.smembers(keys.person_campaigns("p1")) == {
        str(tea.id).encode(),
        str(coffee["id"]).encode(),
    }
    assert redis.smembers(keys.person_campaigns("p3")) == {str(tea.id).encode()}
    assert {a.campaign.slug: a for a in services.people.everywhere("p1")} == before
    # Run again: the same, nothing new.
    again = app.test_cli_runner().invoke(args=["people", "reindex"])
    assert again.exit_code == 0 and again.output.startswith("0 (person, campaign) pairs")
    assert redis.smembers(keys.person_campaigns("p3")) == {str(tea.id).encode()}


def test_participant_hashes_are_told_from_other_keys_by_name() -> None:
    """The reindex walks the keyspace once with keys.PARTICIPANT_PATTERN and keeps what
    keys.participant_of reads back: a participant's hash, whatever its name holds."""
    node = keys.campaign_keys(12).participant("ann:b@x.example")
    assert keys.participant_of(node) == (12, "ann:b@x.example")
    assert fnmatch.fnmatchcase(node, keys.PARTICIPANT_PATTERN.replace("{", "[{]"))
    for other in (
        keys.campaign_keys(12).children("ann"),
        keys.campaign_keys(12).config,
        keys.person_campaigns("ann"),
        "rg:{cx}:p:ann",
        "other:{c1}:p:ann",
    ):
        assert keys.participant_of(other) is None, other


def test_the_periodic_jobs_index_an_upgraded_store_once(services: Services) -> None:
    """A store from before the index needs no step of its own: the jobs' first run after the
    upgrade indexes it (once across the deployment: the job's store lock), then the job only
    reads that the store is indexed."""
    a_sharers_story(services)
    tea = services.campaigns.require("tea")
    redis = services.store.main
    redis.delete(keys.PEOPLE_INDEXED, *redis.scan_iter(match=keys.person_campaigns("*")))
    assert services.people.everywhere("p1")  # read from every campaign meanwhile

    assert "people-index" in services.scheduler.tick()
    assert redis.get(keys.PEOPLE_INDEXED) == b"1"
    assert redis.smembers(keys.person_campaigns("p1")) == {str(tea.id).encode()}
    assert "people-index" not in services.scheduler.tick()  # its lock holds for the hour
    redis.delete(keys.job_lock("people-index"), keys.person_campaigns("p1"))
    # Indexed: the job reads one key and adds nothing (a name left out stays out until
    # `refgate people reindex`).
    assert services.people.index_if_needed() == 0
    assert not redis.exists(keys.person_campaigns("p1"))
