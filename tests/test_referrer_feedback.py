"""Off-path findings fed back to the click path (gateway.referrer_risk, detectors.review).

A referrer flagged by the flagger or the tree watch, or decided by a reviewer, is known to the
click path in the click's own round trip: their next click carries ``History.referrer_review``,
the model features say so, a rule names it for people and the click earns no credit (the visitor
is served as usual). A ``legit`` decision clears it. Replay does the same on the log's clock.
Through the real click path, conversions API and jobs, on every store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder

from detectors.base import History
from detectors.engine import Decision, Engine
from detectors.features import AUTOMATED, FEATURE_NAMES, POSTED, features
from detectors.flagging import ReferrerTally
from detectors.review import DECIDED_FRAUD, UNDER_REVIEW
from gateway.conversions import creditable
from gateway.flags import FlagCandidate, flag_id_for
from gateway.referrer_risk import parse_risk
from gateway.replay import replay
from gateway.services import Services
from gateway.store import keys
from tests.test_tree_detectors import IOS_WECHAT, World, android, ring_of_three

REVIEW = FEATURE_NAMES.index("referrer_review")
SUSPICION = FEATURE_NAMES.index("referrer_suspicion")


@pytest.fixture
def world(client: FlaskClient, services: Services, keys: dict[str, str]) -> World:
    return World(client, services, keys)


def recorded(world: World, click_id: str) -> dict[str, Any]:
    """The click's event as recorded in the stream (its record keeps only part of it)."""
    ck = keys.campaign_keys(world.campaign_id)
    assert world.services.store.main.exists(ck.click(click_id))
    for _, fields in reversed(world.services.store.main.xrange(ck.events)):
        event: dict[str, Any] = orjson.loads(fields[b"e"])
        if event["id"] == click_id:
            return event
    raise AssertionError(f"click {click_id} is not in the stream")


def stranger_click(world: World, referrer: str, n: int) -> dict[str, Any]:
    """A click on ``referrer``'s link by someone unrelated, on their own phone and network."""
    click_id, _ = world.click(referrer, ip=f"198.18.{n}.{n + 1}", ua=android(f"S{n}Q"))
    return recorded(world, click_id)


def raise_referrer(world: World, referrer: str, source: str = "tree:ring") -> str:
    candidate = FlagCandidate(
        "referrer", referrer, 0.85, ("sharers converting each other's links",), source=source
    )
    flag, _ = world.services.flags.raise_flag(world.campaign_id, "tea", candidate, world.clock)
    return flag.id


def test_a_flagged_then_decided_referrer_is_known_to_the_click_path(world: World) -> None:
    before = stranger_click(world, "sharer", 1)
    assert before["decision"] == "allow" and before["features"][REVIEW] == 0.0
    flag_id = raise_referrer(world, "sharer")
    assert world.services.referrer_risk.get(world.campaign_id, "sharer") == (
        "open",
        0.85,
        "tree:ring",
    )

    under_review = stranger_click(world, "sharer", 2)
    assert under_review["outcome"] == "fallback"  # the visitor is served as usual
    assert under_review["decision"] == "deny_credit"
    assert under_review["score"] >= UNDER_REVIEW
    assert under_review["features"][REVIEW] == 0.85
    assert (
        "referrer_review: the sharer is under review for sharers converting each other's links"
        in under_review["reasons"]
    )
    # Someone else's link is not affected.
    assert stranger_click(world, "other", 3)["decision"] == "allow"

    world.services.flags.decide(flag_id, "fraud", "ring confirmed", "risk@example.com")
    decided = stranger_click(world, "sharer", 4)
    assert decided["decision"] == "deny_credit" and decided["score"] >= DECIDED_FRAUD
    assert decided["features"][REVIEW] == 1.0
    assert "referrer_review: the sharer was found cheating by a reviewer" in decided["reasons"]
    # Later findings do not soften a decision.
    raise_referrer(world, "sharer", source="tree:burst")
    assert world.services.referrer_risk.get(world.campaign_id, "sharer")[0] == "fraud"

    world.services.flags.decide(flag_id, "legit", "a mistake", "risk@example.com")
    cleared = stranger_click(world, "sharer", 5)
    assert cleared["decision"] == "allow" and cleared["features"][REVIEW] == 0.0
    assert not any(r.startswith("referrer_review") for r in cleared["reasons"])
    assert world.services.referrer_risk.get(world.campaign_id, "sharer") == ("", 0.0, "")
    # A decided flag is not raised again, so the cleared sharer stays cleared.
    raise_referrer(world, "sharer")
    assert stranger_click(world, "sharer", 6)["decision"] == "allow"


def test_a_conversion_denied_only_for_the_review_waits_for_it(world: World) -> None:
    flag_id = raise_referrer(world, "sharer")
    world.join("newcomer", "sharer", ip="198.18.9.10", ua=android("Q9X"))
    assert world.reward("newcomer") == "held"
    world.services.flags.decide(flag_id, "legit", "fine", "risk@example.com")
    assert world.reward("newcomer") == "credited"  # released by the review, not lost
    # The rule on its own: held; with other evidence (the model, another rule): denied.
    event = {"outcome": "redirect", "decision": "deny_credit", "ts": 0.0, "scored": True}
    review = "referrer_review: the sharer is under review for x"
    assert creditable({**event, "reasons": [review]}, 60.0) == "hold:referrer_under_review"
    assert creditable({**event, "reasons": [review, "model: 0.71"]}, 60.0) == "deny:click_denied"


def test_a_ring_found_by_the_tree_watch_denies_credit_on_its_members_next_clicks(
    world: World,
) -> None:
    phones = ring_of_three(world)
    world.examine()
    for n, member in enumerate(phones):
        event = stranger_click(world, member, n + 10)
        assert event["decision"] == "deny_credit", (member, event["reasons"])
        assert any("sharers converting each other's links" in r for r in event["reasons"])
    assert stranger_click(world, "organiser", 20)["decision"] == "allow"


def test_the_tip_of_a_flagged_chain_is_under_review_before_its_own_link_is_clicked(
    world: World,
) -> None:
    phone = ("198.51.100.9", android("Pixel 7"))
    parent = "seed"
    for n in range(10):
        world.join(f"link{n}", parent, ip=phone[0], ua=phone[1])
        parent = f"link{n}"
    world.examine()
    # link9, the newest account, has no referrer flag of its own: the chain's flag covers it.
    assert world.services.flags.status_of(world.campaign_id, "referrer", "link9") is None
    event = stranger_click(world, "link9", 30)
    assert event["decision"] == "deny_credit"
    assert any("a chain of joins from few phones" in r for r in event["reasons"])
    # Deciding the chain legit clears its members (none has an open flag of its own left).
    chain = next(
        f for f in world.services.flags.find([world.campaign_id])[0] if f.subject[:6] == "chain:"
    )
    for member in chain.members:
        own = flag_id_for(world.campaign_id, "referrer", member)
        if world.services.flags.get(own) is not None:
            world.services.flags.decide(own, "legit", "", "risk@example.com")
    world.services.flags.decide(chain.id, "legit", "friends", "risk@example.com")
    assert stranger_click(world, "link9", 31)["decision"] == "allow"
    assert world.services.referrer_risk.get(world.campaign_id, "link5") == ("", 0.0, "")


def forum_click(
    world: World, referrer: str, n: int, referer: str, extra: dict[str, str] | None = None
) -> dict[str, Any]:
    """A stranger opening the link from a web page (a forum post) in their system browser,
    or (no ``referer``) in WeChat; returns the recorded event."""
    world.clock += 1 + world.rng.expovariate(1 / 60)  # people, not clockwork
    token = world.token(referrer)
    safari = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
    )
    ua = safari if referer else IOS_WECHAT  # WeChat readers of the post send no Referer
    headers = {"User-Agent": ua, "Accept-Language": "zh-CN,zh;q=0.9"}
    if referer:
        headers["Referer"] = referer
    headers.update(extra or {})
    environ = EnvironBuilder(
        path=f"/s/{token}", headers=headers, environ_base={"REMOTE_ADDR": f"198.18.{n}.{n + 1}"}
    ).get_environ()
    world.services.gateway.handle(token, environ, now=world.clock)
    world.services.recorder.flush()
    ck = keys.campaign_keys(world.campaign_id)
    last = world.services.store.main.xrevrange(ck.events, count=1)[0][1]
    event: dict[str, Any] = orjson.loads(last[b"e"])
    return event


def test_a_link_opened_from_public_pages_is_suspected_not_flagged(world: World) -> None:
    forum = "https://tieba.baidu.com/p/8812345678"
    for n in range(12):
        forum_click(world, "poster", n, forum)
    for n in range(12, 20):
        stranger_click(world, "quiet", n)
    world.services.flagger.run(world.clock)
    risk = world.services.referrer_risk
    state, share, source = risk.get(world.campaign_id, "poster")
    assert (state, source) == ("suspect", "clicks:posted") and share == 1.0
    assert risk.get(world.campaign_id, "quiet") == ("", 0.0, "")
    # No accusation: no flag, and the suspicion alone neither denies credit nor challenges.
    assert world.services.flags.find([world.campaign_id], kind="referrer")[0] == []
    event = forum_click(world, "poster", 30, "")  # a WeChat reader of the same post, no Referer
    assert event["features"][SUSPICION] == 1.0 and event["features"][REVIEW] == 0.0
    assert "referrer_review: their link is opened from public web pages" in event["reasons"]
    assert event["decision"] == "allow"
    # A stranger arriving from the public page earns the sharer nothing (whoever posted it).
    event = forum_click(world, "poster", 31, forum)
    assert event["decision"] == "deny_credit" and event["outcome"] == "redirect"
    assert any("the sharer's link is posted publicly" in r for r in event["reasons"])
    # A flag outranks a suspicion, and a suspicion does not soften a flag.
    raise_referrer(world, "poster")
    risk.suspect(world.campaign_id, "poster", 1.0, "clicks:posted")
    assert risk.get(world.campaign_id, "poster")[0] == "open"
    assert stranger_click(world, "poster", 32)["decision"] == "deny_credit"


def test_a_flag_on_a_posted_links_clicks_keeps_the_posting_in_view(world: World) -> None:
    """A link posted publicly whose clicks look wrong flags its sharer; the flag replaces the
    suspicion in the store, and the click path still sees that the link is posted (before,
    the clicks of a scraped link that had made its sharer a suspect looked clean again)."""
    forum = "https://www.smzdm.com/p/123456789/"
    # Scripts reading the forum: Safari's agent with Chrome's client hints.
    spoofed = {"Sec-CH-UA": '"Chromium";v="124", "Google Chrome";v="124"'}
    for n in range(12):
        assert forum_click(world, "poster", n, forum, spoofed)["score"] >= 0.5
    world.services.flagger.run(world.clock)
    flags, _ = world.services.flags.find([world.campaign_id], kind="referrer")
    assert [(f.subject, list(f.evidence["sources"])) for f in flags] == [("poster", [POSTED])]
    assert any("opened from public web pages" in reason for reason in flags[0].reasons)
    state, score, source = world.services.referrer_risk.get(world.campaign_id, "poster")
    assert (state, source) == ("open", POSTED) and score >= 0.5
    reader = forum_click(world, "poster", 30, "")  # a WeChat reader of the same post
    assert reader["features"][SUSPICION] == score and reader["features"][REVIEW] == 0.0
    assert reader["decision"] == "allow"  # the model weighs it; no denial on its own
    event = forum_click(world, "poster", 31, forum)  # from the public page: no credit
    assert event["decision"] == "deny_credit"
    assert any("the sharer's link is posted publicly" in r for r in event["reasons"])
    # A sharer whose suspicious clicks come from no public page is flagged as before.
    chat = "https://servicewechat.com/wx1234/page"  # a chat app's page: not a public one
    for n in range(40, 46):
        assert forum_click(world, "early", n, chat, spoofed)["score"] >= 0.5
    world.services.flagger.run(world.clock)
    assert world.services.referrer_risk.get(world.campaign_id, "early")[::2] == ("open", "clicks")
    # ... and when their link turns up on a forum later, the posting joins the open flag, even
    # once the suspicious clicks are too few a share for a flag of their own (6 of 26).
    for n in range(46, 66):
        forum_click(world, "early", n, forum)
    world.services.flagger.run(world.clock)
    state, score, source = world.services.referrer_risk.get(world.campaign_id, "early")
    assert (state, source) == ("open", POSTED) and score >= 0.5
    assert forum_click(world, "early", 70, "")["features"][SUSPICION] == score


def test_the_posting_replaces_a_clicks_entry_written_at_a_higher_score(world: World) -> None:
    """The risk entry keeps the highest score it was written with; the flag's score moves with
    the tally. A posting found after the flag's score fell must still replace the entry."""
    forum = "https://www.smzdm.com/p/123456789/"
    spoofed = {"Sec-CH-UA": '"Chromium";v="124", "Google Chrome";v="124"'}
    chat = "https://servicewechat.com/wx1234/page"
    for n in range(15):  # 5 of 15 suspicious: a flag at 0.6667
        forum_click(world, "victim", n, chat, spoofed if n < 5 else None)
    world.services.flagger.run(world.clock)
    forum_click(world, "victim", 15, chat)  # 5 of 16: the flag falls to 0.6562
    world.services.flagger.run(world.clock)
    risk = world.services.referrer_risk
    assert risk.get(world.campaign_id, "victim") == ("open", 0.6667, "clicks")
    for n in range(16, 30):
        forum_click(world, "victim", n, forum)
    world.services.flagger.run(world.clock)
    assert risk.get(world.campaign_id, "victim") == ("open", 0.6667, POSTED)


def test_a_finding_about_the_sharers_conduct_outranks_one_about_their_crowd(
    world: World,
) -> None:
    risk = world.services.referrer_risk
    crowd = FlagCandidate("referrer", "hub", 0.9, ("a burst",), source="tree:burst")
    world.services.flags.raise_flag(world.campaign_id, "tea", crowd, world.clock)
    assert risk.get(world.campaign_id, "hub") == ("open", 0.9, "tree:burst")
    assert stranger_click(world, "hub", 40)["decision"] == "allow"  # weighed, not denied
    own = FlagCandidate("referrer", "hub", 0.85, ("two alternates",), source="tree:self")
    world.services.flags.raise_flag(world.campaign_id, "tea", own, world.clock)
    assert risk.get(world.campaign_id, "hub")[2] == "tree:self"
    world.services.flags.raise_flag(world.campaign_id, "tea", crowd, world.clock)
    assert risk.get(world.campaign_id, "hub")[2] == "tree:self"
    assert stranger_click(world, "hub", 41)["decision"] == "deny_credit"


def fetch(world: World, referrer: str, ua: str, n: int) -> int:
    """A request on the referrer's link from ``ua`` (a script, a headless browser, an unfurler):
    answered with the preview page, never a click; returns the status."""
    world.clock += 9.0  # a script's steady pace
    token = world.token(referrer)
    environ = EnvironBuilder(
        path=f"/s/{token}",
        headers={"User-Agent": ua},
        environ_base={"REMOTE_ADDR": f"104.248.149.{n % 250}"},
    ).get_environ()
    return world.services.gateway.handle(token, environ, now=world.clock).status


def test_a_link_fetched_mostly_by_scripts_flags_its_sharer(world: World) -> None:
    """Scripted and headless clicks are answered with a preview and never recorded as clicks:
    the click tallies never saw a bot operation fetching its links thousands of times. The
    recorder counts them off the request (no store call on it) and the flagger flags a link
    fetched mostly by scripts; a scraper reading a link posted publicly (a few dozen fetches
    among people's clicks) and chat apps' unfurlers raise nothing."""
    java = "Apache-HttpClient/4.5.14 (Java/17.0.10)"
    headless = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0.0.0 Safari/537.36"
    )
    store = world.services.store.main
    ck = keys.campaign_keys(world.campaign_id)
    for n in range(60):
        assert fetch(world, "operator", java if n % 2 else headless, n) == 200
        assert fetch(world, "shared", "facebookexternalhit/1.1", n) == 200  # an unfurler
    for n in range(30):
        fetch(world, "scraped", "python-requests/2.31.0", n)
    # Counted in memory and written by the recorder's flusher (at most once a second, so it may
    # have written some already: tests/test_automated_requests.py times it); flushed here.
    world.services.recorder.flush()
    for n in range(30):
        stranger_click(world, "scraped", n)  # people clicking the posted link
    stranger_click(world, "operator", 99)  # one person too
    counts = {int(k): int(v) for k, v in store.hgetall(ck.automated).items()}
    assert sorted(counts.values()) == [30, 60]  # the unfurler is not counted
    world.services.flagger.run(world.clock)
    flags, _ = world.services.flags.find([world.campaign_id], kind="referrer")
    assert [(f.subject, list(f.evidence["sources"])) for f in flags] == [("operator", [AUTOMATED])]
    assert "98% of the requests on their link came from scripts" in flags[0].reasons[0]
    # About the crowd the link draws (anyone can point a script at a link): the click path
    # shows the review and scores a person's click on its own.
    state, _, source = world.services.referrer_risk.get(world.campaign_id, "operator")
    assert (state, source) == ("open", AUTOMATED)
    event = stranger_click(world, "operator", 100)
    assert (
        "referrer_review: the sharer is under review for their link is fetched mostly by "
        "scripts" in event["reasons"]
    )
    assert event["decision"] == "allow"
    # Found once: later runs write nothing (the counts only grow).
    for n in range(60, 70):
        fetch(world, "operator", java, n)
    world.services.recorder.flush()
    assert world.services.flagger.run(world.clock) == 0


def test_clicks_scored_for_the_review_alone_are_no_new_evidence() -> None:
    tally = ReferrerTally()
    review = "referrer_review: the sharer is under review for x"
    for _ in range(10):
        tally.add(0.9, "deny_credit", [review, "model: 0.90"])
    assert tally.clicks == 10 and tally.suspicious == 0
    tally.add(0.9, "deny_credit", [review, "velocity: 40 clicks from one IP"])
    assert tally.suspicious == 1


def test_the_engine_reads_the_review_from_history() -> None:
    from detectors.base import ClickInput

    click = ClickInput(
        1_790_000_000.0, 1, 7, "ip", "203.0.113.0/24", "Mozilla/5.0 (iPhone)", "zh-CN,zh;q=0.9"
    )
    open_ = History(
        referrer_review="open", referrer_review_score=0.75, referrer_review_source="tree:self"
    )
    verdict = Engine().score(click, open_)
    assert verdict.decision is Decision.DENY_CREDIT  # never a challenge or block on its own
    # A finding about the crowd the link draws is the model's to weigh, not a denial.
    crowd = History(
        referrer_review="open", referrer_review_score=0.75, referrer_review_source="tree:prefix"
    )
    verdict = Engine().score(click, crowd)
    assert verdict.decision is Decision.ALLOW
    assert (
        "referrer_review: the sharer is under review for a network filled with joins under them"
        in verdict.reasons
    )
    assert features(click, crowd)[REVIEW] == 0.0  # the model scores the crowd itself
    assert features(click, open_)[REVIEW] == 0.75
    assert features(click, History())[REVIEW] == 0.0
    assert parse_risk(b"open|0.75|tree:ring") == ("open", 0.75, "tree:ring")
    assert parse_risk("nonsense") == ("", 0.0, "") and parse_risk(None) == ("", 0.0, "")


ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; {model} Build/UKQ1.230924.001; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.120 Mobile Safari/537.36 "
    "XWEB/1220067 MMWEBSDK/20240301 MMWEBID/{n} MicroMessenger/8.0.48.2580(0x28003036) "
    "WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"
)


def test_replay_feeds_findings_back_on_the_logs_clock(tmp_path: Path) -> None:
    """A ring closes in the log; the next flag run on the log's clock puts its members under
    review, and only clicks after that run carry it."""
    t = 1_770_552_000.0
    lines: list[dict[str, Any]] = []
    phones = {"ann": ("198.51.100.61", 1), "ben": ("198.51.100.62", 2), "cat": ("198.51.100.63", 3)}

    def click(cid: str, ts: float, referrer: str, ip: str, n: int) -> None:
        lines.append(
            {
                "type": "click", "id": cid, "ts": ts, "campaign": "tea", "referrer": referrer,
                "ip": ip, "ua": ANDROID.format(model=f"M{n}", n=n),
                "headers": {"accept-language": "zh-CN,zh;q=0.9", "referer": ""},
                "visitor_id": f"visitor-{cid}",
            }
        )  # fmt: skip

    def convert(cid: str, ts: float, user: str) -> None:
        lines.append(
            {"type": "conversion", "id": f"x-{cid}", "ts": ts, "campaign": "tea",
             "click_id": cid, "user": user}
        )  # fmt: skip

    for k, (name, (ip, n)) in enumerate(phones.items()):
        click(f"j-{name}", t + 100 * k, "organiser", ip, n)
        convert(f"j-{name}", t + 100 * k + 60, name)
    t += 1000
    for k, (name, target) in enumerate((("ann", "ben"), ("ben", "cat"), ("cat", "ann"))):
        ip, n = phones[name]
        click(f"alt-{name}", t + 100 * k, target, ip, n)
        convert(f"alt-{name}", t + 100 * k + 50, f"{name}-alt")
    closed = t + 250  # the cycle closes with cat-alt's conversion
    click("just-after", closed + 1, "ann", "198.18.0.7", 40)  # before the next flag run
    click("later", closed + 600, "ann", "198.18.0.8", 41)
    click("elsewhere", closed + 601, "organiser", "198.18.0.9", 42)
    lines.sort(key=lambda line: line["ts"])
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    replay(log, tmp_path / "out", with_features=True)
    rows = {
        row["id"]: row
        for row in map(json.loads, (tmp_path / "out" / "clicks.jsonl").read_text().splitlines())
    }
    assert rows["just-after"]["decision"] == "allow"
    assert rows["just-after"]["features"][REVIEW] == 0.0
    assert rows["later"]["decision"] == "deny_credit"
    assert rows["later"]["features"][REVIEW] > 0
    assert any("converting each other's links" in r for r in rows["later"]["reasons"])
    assert rows["elsewhere"]["decision"] == "allow"
