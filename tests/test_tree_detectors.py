"""Tree-level detectors (gateway.trees.TreeWatch) through the real API and click path.

Each case mints links, sends clicks through the click path (ClickGateway.handle, the handler
/s/<token> runs) with chosen addresses, agents and cookies, converts through
POST /api/v1/conversions, runs ``services.trees.run`` and checks the flags raised, their members
and the rewards they hold. Clicks carry explicit times a few minutes before their conversion
(a person reads the landing page), so the click-level rules see no clockwork and conversions are
not "too fast": a reward is held because of a tree flag, not because of the test's own speed.

Honest look-alikes (a family on one Wi-Fi, a viral sharer with a carrier NAT among their
networks, a child on a parent's phone, a fast chain of friends) raise no referrer flag.
"""

from __future__ import annotations

import html
import random
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from gateway.flags import Flag
from gateway.services import Services
from tests.conftest import FIXTURES, bearer

_ROWS = [
    line.split("\t")
    for line in (FIXTURES / "inapp_user_agents.tsv").read_text(encoding="utf-8").splitlines()
    if line and not line.startswith("#")
]
#: iOS WeChat: every iPhone on one iOS and WeChat version sends exactly this.
IOS_WECHAT = next(r[2] for r in _ROWS if r[0] == "wechat" and "iPhone" in r[2])
#: Android WeChat: names the phone's model and build (``23127PN0CC Build/``).
_ANDROID_WECHAT = next(r[2] for r in _ROWS if r[0] == "wechat" and "23127PN0CC Build/" in r[2])


def android(model: str) -> str:
    """An Android WeChat agent on another phone model (a distinct device)."""
    return _ANDROID_WECHAT.replace("23127PN0CC", model)


class World:
    """One campaign, its sharers' links, and a clock for the clicks."""

    def __init__(
        self, client: FlaskClient, services: Services, keys: dict[str, str], slug: str = "tea"
    ) -> None:
        self.client = client
        self.services = services
        self.slug = slug
        self.admin = bearer(keys["admin"])
        self.conversion = bearer(keys["conversion"])
        response = client.post(
            "/api/v1/campaigns",
            json={
                "slug": slug,
                "name": slug.title(),
                "destination_url": "https://shop.example.com/",
                "reward": {"amount": 1, "budget_total": 10_000},
            },
            headers=self.admin,
        )
        assert response.status_code == 201, response.json
        self.campaign_id: int = response.json["id"]  # type: ignore[index]
        self.tokens: dict[str, str] = {}
        self.rng = random.Random(7)
        # Clicks start at the beginning of the last full hour and arrive like people do
        # (exponential gaps, ~16 s); joins stamped from this clock stay within that hour, so
        # hourly indexes (prefix clusters) never depend on when the test runs.
        self.clock = (int(time.time()) // 3600 - 1) * 3600 + 60.0

    def token(self, referrer: str) -> str:
        if referrer not in self.tokens:
            response = self.client.post(
                f"/api/v1/campaigns/{self.slug}/links",
                json={"referrer": referrer},
                headers=self.admin,
            )
            assert response.status_code == 201, response.json
            self.tokens[referrer] = response.json["token"]  # type: ignore[index]
        return self.tokens[referrer]

    def click(
        self, referrer: str, *, ip: str, ua: str, visitor: str | None = None
    ) -> tuple[str, str]:
        """A click on the referrer's link; returns (click id, the browser's visitor id)."""
        self.clock += 1 + self.rng.expovariate(1 / 15)
        token = self.token(referrer)
        headers = {"User-Agent": ua, "Accept-Language": "zh-CN,zh;q=0.9"}
        if visitor is not None:
            headers["Cookie"] = f"rg_vid={visitor}"
        environ = EnvironBuilder(
            path=f"/s/{token}", headers=headers, environ_base={"REMOTE_ADDR": ip}
        ).get_environ()
        answer = self.services.gateway.handle(token, environ, now=self.clock)
        response = Response.from_app(answer, environ, buffered=True)
        self.services.recorder.flush()
        if response.status_code == 302:
            location = response.headers["Location"]
        else:  # WeChat and other in-app browsers get the fallback page with the link to go on
            assert response.status_code == 200, response.status_code
            found = re.search(r'href="([^"]*rg_click=[^"]*)"', response.get_data(as_text=True))
            assert found is not None
            location = html.unescape(found.group(1))
        click_id = parse_qs(urlsplit(location).query)["rg_click"][0]
        cookie = response.headers.get("Set-Cookie", "")
        if cookie.startswith("rg_vid="):
            visitor = cookie.split(";")[0].removeprefix("rg_vid=")
        assert visitor is not None
        return click_id, visitor

    def join(
        self,
        user: str,
        referrer: str,
        *,
        ip: str,
        ua: str,
        visitor: str | None = None,
        delay: float | None = None,
    ) -> str:
        """``user`` clicks ``referrer``'s link and signs up; returns the visitor id used.

        Conversions go through POST /api/v1/conversions, which stamps the wall clock. With
        ``delay`` the join is stamped ``delay`` seconds after the click instead (the service
        the endpoint calls, with its ``now``): for cases whose outcome depends on the rhythm of
        the joins, which the wall clock of a test loop would make machine-regular.
        """
        click_id, visitor = self.click(referrer, ip=ip, ua=ua, visitor=visitor)
        if delay is None:
            response = self.client.post(
                "/api/v1/conversions",
                json={"click_id": click_id, "user": user},
                headers=self.conversion,
            )
            assert response.status_code == 201, response.json
            answer: dict[str, Any] = response.json  # type: ignore[assignment]
        else:
            outcome = self.services.conversions.convert(click_id, user, now=self.clock + delay)
            assert outcome.new
            answer = outcome.answer
        assert answer["parent"] == referrer
        return visitor

    def examine(self) -> list[Flag]:
        self.services.trees.run(time.time())
        flags, _ = self.services.flags.find([self.campaign_id])
        return flags

    def reward(self, user: str) -> str:
        row = self.services.rewards.get(self.campaign_id, user)
        assert row is not None, user
        status: str = row["status"]
        return status


@pytest.fixture
def world(client: FlaskClient, services: Services, keys: dict[str, str]) -> World:
    return World(client, services, keys)


def referrer_flags(flags: list[Flag]) -> set[str]:
    return {f.subject for f in flags if f.kind == "referrer"}


def of(flags: list[Flag], kind: str, prefix: str = "") -> list[Flag]:
    return [f for f in flags if f.kind == kind and f.subject.startswith(prefix)]


# -- honest look-alikes -------------------------------------------------------------------------


def test_a_family_of_iphones_inviting_each_other_is_not_flagged(world: World) -> None:
    home = "203.0.113.24"
    # Mum joined through a friend; dad through mum; the child through dad. Three iPhones on the
    # same iOS and WeChat version behind one home address: identical agents, own cookies.
    world.join("mum", "friend", ip=home, ua=IOS_WECHAT)
    world.join("dad", "mum", ip=home, ua=IOS_WECHAT)
    world.join("kid", "dad", ip=home, ua=IOS_WECHAT)
    assert [w for w in ("mum", "dad", "kid") if world.reward(w) != "credited"] == []
    flags = world.examine()
    assert flags == []
    assert all(world.reward(w) == "credited" for w in ("mum", "dad", "kid"))


def test_a_viral_sharer_with_a_carrier_nat_among_their_networks_is_not_flagged(
    world: World,
) -> None:
    world.join("star", "agency", ip="198.51.100.7", ua=android("Pixel 8"))
    # 100 joins under the star within the hour: 40 from one carrier /24 (four NAT addresses,
    # identical iOS agents, own cookies), 60 from 60 other networks, interleaved as they
    # arrive; each person signs up half a minute to a few minutes after their click.
    carrier = iter(range(40))
    others = iter(range(60))
    reading = random.Random(11)
    for n in range(100):
        delay = reading.uniform(20, 240)
        if n % 5 in (0, 2):
            k = next(carrier)
            ip, ua, user = f"100.64.9.{k % 4 + 1}", IOS_WECHAT, f"c{k}"
        else:
            k = next(others)
            ip, ua, user = f"203.{k + 1}.77.9", android(f"M{k}X"), f"o{k}"
        world.join(user, "star", ip=ip, ua=ua, delay=delay)
    credited = sum(world.reward(f"c{k}") == "credited" for k in range(40))
    assert credited == 40
    flags = world.examine()
    assert referrer_flags(flags) == set()
    assert of(flags, "cluster") == []
    assert world.reward("c7") == "credited" and world.reward("o7") == "credited"


def test_a_child_signing_up_on_a_parents_phone_holds_that_join_only(world: World) -> None:
    home, phone = "203.0.113.50", android("SM-A546E")
    world.join("parent", "friend", ip=home, ua=phone)
    world.join("child", "parent", ip=home, ua=phone)  # on the parent's phone: one extra account
    world.join("aunt", "parent", ip="198.51.100.80", ua=android("2201123C"))
    flags = world.examine()
    assert [(f.kind, f.subject) for f in flags] == [("participant", "child")]
    assert "parent's own browser or device" in flags[0].reasons[0]
    assert "parent" not in referrer_flags(flags)
    assert world.reward("child") != "credited"  # denied at the click already, or held
    assert world.reward("aunt") == "credited"


def test_two_children_signing_up_on_a_parents_phone_hours_apart(world: World) -> None:
    # Each child signs up on the parent's phone when they get round to it: both joins are held,
    # the parent is not flagged (two alternate accounts come minutes apart: see
    # test_two_alternate_accounts_on_the_sharers_own_android_phone).
    home, phone = "203.0.113.51", android("SM-A556E")
    world.join("parent", "friend", ip=home, ua=phone)
    world.join("son", "parent", ip=home, ua=phone, delay=70)
    world.clock += 2 * 3600
    world.join("daughter", "parent", ip=home, ua=phone, delay=50)
    flags = world.examine()
    assert {(f.kind, f.subject) for f in flags} == {
        ("participant", "son"),
        ("participant", "daughter"),
    }
    assert world.reward("son") != "credited" and world.reward("daughter") != "credited"


def test_a_fast_honest_chain_from_five_phones_on_two_networks_is_not_flagged(
    world: World,
) -> None:
    models = ["Pixel 8", "SM-S9180", "23127PN0CC", "V2309A", "PJZ110"]
    parent = "origin"
    for n, model in enumerate(models):
        user = f"friend{n}"
        world.join(user, parent, ip=f"100.64.{n % 2}.{n + 10}", ua=android(model))
        parent = user
    flags = world.examine()
    assert referrer_flags(flags) == set()
    assert of(flags, "cluster", "chain:") == []
    assert all(world.reward(f"friend{n}") == "credited" for n in range(5))


# -- must-catch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("phones", [1, 2])
def test_a_chain_of_ten_joins_from_one_or_two_phones(world: World, phones: int) -> None:
    devices = [("198.51.100.9", android("Pixel 7")), ("203.0.113.9", android("SM-G9910"))]
    parent = "seed"
    names = []
    for n in range(10):
        ip, ua = devices[n % phones]
        user = f"link{n}"
        world.join(user, parent, ip=ip, ua=ua)
        names.append(user)
        parent = user
    flags = world.examine()
    chains = of(flags, "cluster", "chain:")
    assert chains, [(f.kind, f.subject) for f in flags]
    longest = max(chains, key=lambda f: len(f.members))
    assert set(names) <= set(longest.members)
    assert f"{phones} phone(s)" in longest.reasons[0]
    # Every sharer in the chain is flagged; their rewards, credited or not before, are not paid.
    assert set(names[:-1]) <= referrer_flags(flags)
    assert all(world.reward(u) in ("held", "denied") for u in names[1:])
    if phones == 2:  # no join here came from its own sharer's phone: held by the flag alone
        assert all(world.reward(u) == "held" for u in names[1:])


@pytest.mark.parametrize("source", ["two networks", "one phone"])
def test_twenty_children_in_minutes_from_few_networks_or_one_device(
    world: World, source: str
) -> None:
    world.join("hub", "boss", ip="192.0.2.200", ua=android("Pixel 6"))
    children = [f"kid{n}" for n in range(20)]
    for n, user in enumerate(children):
        if source == "two networks":  # many iPhones (cookies cleared) on two networks
            # Stamped half a minute after each click (not by the wall clock of this loop): the
            # prefix index is hourly, and the burst must be caught without clockwork, by the
            # practised pace of the sign-ups (twenty iPhones on two networks are also what a
            # group chat on a carrier's NAT looks like).
            ip = f"198.51.{100 + n % 2}.{n + 1}"
            world.join(user, "hub", ip=ip, ua=IOS_WECHAT, delay=30.0)
        else:  # one phone, a fresh account each time, cookies cleared
            world.join(user, "hub", ip="203.0.113.99", ua=android("M2102K1C"))
    assert all(world.reward(u) == "credited" for u in children)
    flags = world.examine()
    assert "hub" in referrer_flags(flags)
    bursts = of(flags, "cluster", "burst:hub")
    assert len(bursts) == 1 and set(bursts[0].members) == set(children)
    if source == "two networks":
        assert "2 network(s)" in bursts[0].reasons[0]
        assert "each signing up as quickly after the click" in bursts[0].reasons[0]
        # Ten distinct iPhones filling each /24 are a crowd on their own: no prefix cluster.
        assert of(flags, "cluster", "prefix:") == []
    else:
        assert "1 device(s)" in bursts[0].reasons[0]
    assert all(world.reward(u) == "held" for u in children)


def test_two_alternate_accounts_on_the_sharers_own_android_phone(world: World) -> None:
    phone, home = android("22081212C"), "203.0.113.140"
    world.join("sharer", "someone", ip=home, ua=phone)
    world.join("alt1", "sharer", ip=home, ua=phone)
    first = world.examine()
    assert [(f.kind, f.subject) for f in first] == [("participant", "alt1")]
    world.join("alt2", "sharer", ip=home, ua=phone)
    world.join("honest", "sharer", ip="198.51.100.33", ua=android("CPH2557"))
    flags = world.examine()
    assert {(f.kind, f.subject) for f in flags} == {
        ("participant", "alt1"),
        ("participant", "alt2"),
        ("referrer", "sharer"),
    }
    sharer = next(f for f in flags if f.kind == "referrer")
    assert "2 accounts (alt1, alt2)" in sharer.reasons[0]
    assert world.reward("alt1") != "credited" and world.reward("alt2") != "credited"
    assert world.reward("honest") == "held"  # the flagged sharer's other rewards wait too


def ring_of_three(world: World) -> dict[str, tuple[str, str]]:
    """ann, ben and cat join under an organiser, then each one's own phone converts, as a new
    account, on the next one's link; returns their phones (address, agent)."""
    phones = {
        "ann": ("198.51.100.61", android("V2227A")),
        "ben": ("198.51.100.62", android("PHB110")),
        "cat": ("198.51.100.63", android("RMX3700")),
    }
    for name, (ip, ua) in phones.items():
        world.join(name, "organiser", ip=ip, ua=ua)
    for name, target in (("ann", "ben"), ("ben", "cat"), ("cat", "ann")):
        ip, ua = phones[name]
        world.join(f"{name}-alt", target, ip=ip, ua=ua)
    return phones


def test_a_ring_of_sharers_converting_each_others_links(world: World) -> None:
    phones = ring_of_three(world)
    assert all(world.reward(f"{n}-alt") == "credited" for n in phones)
    flags = world.examine()
    rings = of(flags, "cluster", "ring:")
    assert len(rings) == 1 and set(rings[0].members) == set(phones)
    # The cycle as a reader follows it, with arrows (→, not ASCII ->, in every language).
    (cycle,) = [r for r in rings[0].reasons if "converting each other's links" in r]
    hops = cycle.partition(": ")[2].split(" → ")
    assert len(hops) == 4 and hops[0] == hops[-1] and set(hops) == set(phones), cycle
    assert set(phones) <= referrer_flags(flags)
    assert "organiser" not in referrer_flags(flags)
    assert all(world.reward(f"{n}-alt") == "held" for n in phones)


def test_three_participants_from_one_browser(world: World) -> None:
    browser: str | None = None
    for n, sharer in enumerate(("s1", "s2", "s3")):
        browser = world.join(
            f"p{n}", sharer, ip=f"198.51.100.{n + 90}", ua=IOS_WECHAT, visitor=browser
        )
    world.join("other", "s1", ip="203.0.113.7", ua=IOS_WECHAT)
    flags = world.examine()
    clusters = of(flags, "cluster", "browser:")
    assert len(clusters) == 1
    assert set(clusters[0].members) == {"p0", "p1", "p2"}
    # The browser's first account is its owner's own (under s1); the accounts it made after
    # that went to two other sharers: an account factory's customers.
    assert referrer_flags(flags) == {"s2", "s3"}
    assert (
        "joined under 2 sharers: s2, s3" in next(f for f in flags if f.subject == "s3").reasons[0]
    )
    assert all(world.reward(f"p{n}") == "held" for n in range(3))
    assert world.reward("other") == "credited"  # the same sharer's unrelated join is paid


# -- slow chains and a scripted pace ------------------------------------------------------------


def test_a_slow_chain_from_one_phone_is_flagged_and_honest_slow_chains_are_not(
    world: World,
) -> None:
    # An operator growing a chain at a person's pace (40 minutes between accounts) on one phone.
    phone = ("198.51.100.9", android("Pixel 7"))
    # Friends of friends at the same pace, each on their own phone, all behind one carrier NAT.
    parent, honest_parent = "seed", "origin"
    for n in range(8):
        world.clock += 40 * 60
        world.join(f"slow{n}", parent, ip=phone[0], ua=phone[1], delay=60.0)
        parent = f"slow{n}"
        world.join(
            f"friend{n}", honest_parent, ip=f"100.64.{n % 2}.{n + 10}", ua=android(f"F{n}X"),
            delay=90.0,
        )  # fmt: skip
        honest_parent = f"friend{n}"
    flags = world.examine()
    chains = of(flags, "cluster", "chain:")
    assert len(chains) == 1 and {f"slow{n}" for n in range(8)} <= set(chains[0].members)
    assert "1 phone(s)" in chains[0].reasons[0]
    assert not any(member.startswith("friend") for member in chains[0].members)
    assert not {f"friend{n}" for n in range(8)} & referrer_flags(flags)


def test_a_sharer_whose_sign_ups_come_seconds_after_the_click_is_flagged(world: World) -> None:
    for n in range(6):  # a script signing up accounts 8 s after each click
        world.join(f"bot{n}", "customer", ip=f"198.18.{n}.9", ua=android(f"B{n}"), delay=8.0)
    for n in range(6):  # people read the page first; one of them is quick
        delay = 12.0 if n == 0 else 45.0 + 20 * n
        world.join(f"p{n}", "honest", ip=f"203.0.{n}.9", ua=android(f"P{n}"), delay=delay)
    flags = world.examine()
    assert referrer_flags(flags) == {"customer"}
    flag = next(f for f in flags if f.subject == "customer")
    assert "6 of 6 sign-ups under them came within 15 s of the click" in flag.reasons
    assert all(world.reward(f"bot{n}") in ("held", "denied") for n in range(6))
    assert all(world.reward(f"p{n}") == "credited" for n in range(6))


def test_a_ring_signing_up_on_spare_phones_at_home_is_flagged(world: World) -> None:
    homes = {"ann": "198.51.100.71", "ben": "198.51.100.72", "cat": "198.51.100.73"}
    for name, ip in homes.items():
        world.join(name, "organiser", ip=ip, ua=android(f"{name.upper()}-1"))
    # Each sharer's spare phone (another model, fresh browser) at home signs up on another
    # one's link: no device of theirs is involved, only their home's address. Ann and Ben on
    # each other's first (two households: not yet a ring), then Cat joins in.
    for n, (name, target) in enumerate((("ann", "ben"), ("ben", "ann"), ("ben", "cat"))):
        world.join(f"{name}-alt{n}", target, ip=homes[name], ua=android(f"{name.upper()}-S"))
    assert of(world.examine(), "cluster", "ring:") == []
    world.join("cat-alt", "ann", ip=homes["cat"], ua=android("CAT-S"))
    flags = world.examine()
    rings = of(flags, "cluster", "ring:")
    assert len(rings) == 1 and set(rings[0].members) == set(homes)
    assert set(homes) <= referrer_flags(flags)


def test_two_households_signing_up_on_each_others_links_are_not_a_ring(world: World) -> None:
    # The Lis and the Wangs are friends: a Li joins through a Wang's link, a Wang through a
    # Li's, and the second Li through a Wang's, all from their homes' Wi-Fi.
    li, wang = "198.51.100.81", "198.51.100.82"
    world.join("li1", "someone", ip=li, ua=android("LI-1"))
    world.join("wang1", "li1", ip=wang, ua=android("WANG-1"))
    world.join("li2", "wang1", ip=li, ua=android("LI-2"))
    world.join("wang2", "li1", ip=wang, ua=android("WANG-2"))
    flags = world.examine()
    assert of(flags, "cluster", "ring:") == [] and referrer_flags(flags) == set()


def test_three_accounts_under_one_sharer_from_one_phone_flag_the_sharer(world: World) -> None:
    # The sharer never joined through a link (no known device): their alternate accounts all
    # come from one Android phone at home.
    phone, home = android("2211133C"), "203.0.113.150"
    for n in range(3):
        world.join(f"alt{n}", "seedsharer", ip=home, ua=phone)
    # A parent and a child on one phone under another sharer: two accounts, not flagged.
    family = android("V2324A")
    world.join("mum", "aunt", ip="203.0.113.151", ua=family)
    world.join("kid", "aunt", ip="203.0.113.151", ua=family)
    flags = world.examine()
    assert referrer_flags(flags) == {"seedsharer"}
    sharer = next(f for f in flags if f.kind == "referrer")
    assert "3 accounts (alt0, alt1, alt2) joined under them from one phone" in sharer.reasons


# -- one phone across addresses, accounts made on a sharer's phone, households sharing one ------


def test_a_child_using_a_parents_browser_holds_that_join_only(world: World) -> None:
    # The parent joined on their phone; the child signs up under them in the same browser (the
    # parent's cookie): one extra account on a parent's phone, not a lead on the household.
    home, phone = "203.0.113.60", android("V2250A")
    browser = world.join("parent", "friend", ip=home, ua=phone)
    world.join("child", "parent", ip=home, ua=phone, visitor=browser)
    world.join("neighbour", "parent", ip="198.51.100.160", ua=android("PGT110"))
    flags = world.examine()
    assert [(f.kind, f.subject) for f in flags] == [("participant", "child")]
    assert of(flags, "cluster", "browser:") == []
    assert world.reward("parent") == "credited"  # the parent's own join, paid to their friend
    assert world.reward("neighbour") == "credited"


def test_accounts_from_one_android_install_on_mobile_data_flag_the_sharer(world: World) -> None:
    # A seed sharer (no known device) signs up three alternate accounts on their own WeChat
    # install over mobile data: a new carrier NAT address each time, no cookie, one agent.
    phone = android("2206123SC").replace("NetType/WIFI", "NetType/5G")
    for n in range(3):
        world.join(f"alt{n}", "seedsharer", ip=f"100.64.{n}.{n + 20}", ua=phone)
    # 300 people behind one carrier address, each on their own Android phone of one model and
    # WeChat version (their installs differ), 30 of them joining under one group owner.
    # They sign up at their own pace, half a minute to five minutes after their click.
    carrier, reading = "100.64.200.7", random.Random(5)
    for n in range(30):
        ua = android("V2309A").replace("MMWEBID/6154", f"MMWEBID/{1000 + n * 37}")
        delay = reading.uniform(30, 300)
        world.join(f"member{n}", "groupowner", ip=carrier, ua=ua, delay=delay)
    flags = world.examine()
    assert referrer_flags(flags) == {"seedsharer"}
    sharer = next(f for f in flags if f.kind == "referrer")
    assert "3 accounts (alt0, alt1, alt2) joined under them from one phone" in sharer.reasons
    assert all(world.reward(f"member{n}") == "credited" for n in range(30))


def test_an_account_made_on_the_sharers_phone_sharing_from_it(world: World) -> None:
    # The sharer joined on their phone; an alternate account is made on it under them, then
    # another under that account, from the same phone on mobile data (the alternate account's
    # phone is the sharer's: its first owner).
    phone, home = android("PHU110"), "203.0.113.170"
    world.join("sharer", "someone", ip=home, ua=phone)
    world.join("alt", "sharer", ip=home, ua=phone)
    world.join("alt2", "alt", ip="100.64.9.9", ua=phone.replace("NetType/WIFI", "NetType/4G"))
    # A household: a child signs up on a parent's phone, then a friend of the child's joins
    # under the child on their own phone.
    family = android("V2324A")
    world.join("mum", "aunt", ip="203.0.113.171", ua=family)
    world.join("kid", "mum", ip="203.0.113.171", ua=family)
    world.join("kidsfriend", "kid", ip="198.51.100.171", ua=android("RMX3888"))
    flags = world.examine()
    assert referrer_flags(flags) == {"sharer", "alt"}
    sharer = next(f for f in flags if f.kind == "referrer" and f.subject == "sharer")
    assert "2 accounts (alt, alt2) joined under them from their own device" in sharer.reasons
    assert {f.subject for f in flags if f.kind == "participant"} == {"alt", "alt2", "kid"}
    assert world.reward("alt2") != "credited"
    assert world.reward("kidsfriend") == "credited" and world.reward("mum") == "credited"


def test_spare_phones_making_accounts_for_several_sharers_flag_them(world: World) -> None:
    # A mutual-help group: ann, ben and cat joined on mobile data (their homes are unknown), and
    # their spare Android phones at home sign up accounts on each other's links, one fresh
    # account (no cookie) each time. One spare phone serves two sharers: both are its customers.
    for name in ("ann", "ben", "cat"):
        world.join(name, "organiser", ip="100.64.3.9", ua=IOS_WECHAT)
    spare = android("ANN-SPARE").replace("MMWEBID/6154", "MMWEBID/4471")
    world.join("alt1", "ben", ip="100.64.7.1", ua=spare)  # the spare's first account
    world.join("alt2", "cat", ip="100.64.7.2", ua=spare)
    assert referrer_flags(world.examine()) == set()  # one customer: a shared phone, so far
    world.join("alt3", "ben", ip="100.64.7.3", ua=spare)
    world.join("alt4", "organiser", ip="100.64.7.4", ua=spare)
    # A household phone: the mum joined on it, the child signs up on it under her.
    family = android("V2324A")
    world.join("mum", "aunt", ip="203.0.113.180", ua=family)
    world.join("kid", "mum", ip="100.64.8.8", ua=family.replace("NetType/WIFI", "NetType/5G"))
    flags = world.examine()
    assert referrer_flags(flags) == {"ben", "cat", "organiser"}
    assert (
        "joined under 3 sharers: ben, cat, organiser"
        in next(f for f in flags if f.subject == "ben").reasons[0]
    )
    assert all(world.reward(f"alt{n}") != "credited" for n in (2, 3, 4))
    assert world.reward("kid") != "credited"  # the child's join on the mum's phone waits
    assert world.reward("mum") == "credited"


def test_a_festival_surge_on_carrier_nats_is_not_a_burst(world: World) -> None:
    # Spring Festival eve: a group owner's link goes round a city's family groups; 40 people join
    # within a quarter of an hour from three carrier /24s, each on their own phone (distinct
    # installs and cookies), signing up when they have read the page; a grandmother signs up
    # on her grandson's phone after him.
    world.join("owner", "someone", ip="198.51.100.200", ua=android("Pixel 7"))
    reading = random.Random(3)
    for n in range(40):
        phone = n - (n == 1)
        ua = android(f"F{phone % 7}X").replace("MMWEBID/6154", f"MMWEBID/{2000 + phone}")
        ip = f"100.64.{20 + n % 3}.{n % 5 + 1}"
        world.join(f"guest{n}", "owner", ip=ip, ua=ua, delay=reading.lognormvariate(4.3, 0.8))
    flags = world.examine()
    assert referrer_flags(flags) == set()
    assert of(flags, "cluster") == []
    assert all(world.reward(f"guest{n}") == "credited" for n in range(40))


def test_twelve_friends_signing_up_at_similar_paces_are_not_a_burst(world: World) -> None:
    # A group owner's link: twelve people join within minutes, each on their own phone and
    # network, after reading the page for 38-78 s (coefficient of variation 0.23: close, by
    # chance, but not a script's or a practised worker's pace).
    world.join("owner", "someone", ip="198.51.100.220", ua=android("Pixel 8"))
    for n, delay in enumerate([38, 50, 61, 44, 76, 58, 43, 70, 55, 40, 64, 78]):
        ua = android(f"G{n}Y").replace("MMWEBID/6154", f"MMWEBID/{4000 + n}")
        world.join(f"friend{n}", "owner", ip=f"198.18.{40 + n}.9", ua=ua, delay=delay)
    flags = world.examine()
    assert referrer_flags(flags) == set() and of(flags, "cluster") == []
    assert all(world.reward(f"friend{n}") == "credited" for n in range(12))


class _Punctual(random.Random):
    """A clock for World.click with no wait before a click: the joins land exactly when a case
    says."""

    def expovariate(self, lambd: float) -> float:
        return 0.0


def join_at(world: World, user: str, referrer: str, at: float, delay: float, n: int) -> None:
    """``user`` joins ``referrer`` at ``at``, ``delay`` seconds after their click, on their own
    phone (an Android model and WeChat install of their own) and network."""
    world.rng = _Punctual()
    world.clock = at - delay - 1
    ua = android(f"K{n}Z").replace("MMWEBID/6154", f"MMWEBID/{5000 + n}")
    world.join(user, referrer, ip=f"198.18.{100 + n}.9", ua=ua, delay=delay)


def test_eight_friends_joining_at_a_near_even_pace_by_chance_are_not_a_burst(
    world: World,
) -> None:
    # A group owner's link: eight people in a quarter of an hour, each on their own phone and
    # network, reading the page for 45-200 s; their joins' gaps vary by 0.24 (coefficient of
    # variation), an evenness chance gives some of thousands of sharers' quarters of an hour.
    world.join("owner", "someone", ip="198.51.100.230", ua=android("Pixel 9"))
    at = world.clock + 3600
    delays = [45, 120, 70, 200, 95, 60, 150, 80]
    for n, gap in enumerate([0, 72, 135, 96, 148, 84, 128, 100]):
        at += gap
        join_at(world, f"friend{n}", "owner", at, delays[n], n)
    flags = world.examine()
    assert referrer_flags(flags) == set() and of(flags, "cluster") == []
    assert all(world.reward(f"friend{n}") == "credited" for n in range(8))


def test_accounts_joining_at_a_clockwork_cadence_are_a_burst(world: World) -> None:
    # A studio on a SIM pool: ten accounts, each on another phone model and carrier address,
    # one every 88-97 s (variation 0.03), each signed up some time after its click.
    world.join("hub", "boss", ip="192.0.2.220", ua=android("Pixel 7"))
    at = world.clock + 3600
    delays = [40, 75, 55, 120, 35, 90, 60, 140, 50, 80]
    for n, gap in enumerate([0, 90, 95, 88, 93, 97, 91, 94, 96, 89]):
        at += gap
        join_at(world, f"acct{n}", "hub", at, delays[n], n)
    flags = world.examine()
    assert "hub" in referrer_flags(flags)
    bursts = of(flags, "cluster", "burst:hub")
    assert bursts and "at clockwork intervals" in bursts[0].reasons[0]


def test_a_studio_on_one_network_signing_up_at_a_practised_pace_is_a_burst(world: World) -> None:
    # An emulator image spoofing a different phone model per account (each agent distinct, no
    # cookie), one broadband /24, each sign-up about 25 s after its click.
    world.join("hub", "boss", ip="192.0.2.210", ua=android("Pixel 6"))
    pace = random.Random(9)
    for n in range(14):
        ua = android(f"EMU{n}").replace("MMWEBID/6154", f"MMWEBID/{3000 + n}")
        world.join(
            f"acct{n}", "hub", ip=f"198.51.100.{n % 3 + 1}", ua=ua, delay=pace.uniform(22, 30)
        )
    flags = world.examine()
    assert "hub" in referrer_flags(flags)
    bursts = of(flags, "cluster", "burst:hub")
    assert bursts and "each signing up as quickly after the click" in bursts[0].reasons[0]
    assert all(world.reward(f"acct{n}") == "held" for n in range(14))


# -- accounts made in a row, another app of the sharer's phone ---------------------------------


def test_two_accounts_made_in_a_row_on_one_iphone_flag_the_sharer(world: World) -> None:
    # A seed sharer (no known device) signs up two accounts on a spare iPhone at home, a few
    # minutes apart, each within a minute of its click; the iPhone names no device and keeps no
    # cookie: only its address and agent tie the two together.
    spare = "203.0.113.190"
    world.join("alt1", "seedsharer", ip=spare, ua=IOS_WECHAT, delay=50)
    world.clock += 240
    world.join("alt2", "seedsharer", ip=spare, ua=IOS_WECHAT, delay=40)
    # A family sharing one phone signs up when each gets round to it: an hour apart.
    family = android("V2324A")
    world.join("mum", "aunt", ip="203.0.113.191", ua=family, delay=70)
    world.clock += 3600
    world.join("kid", "aunt", ip="203.0.113.191", ua=family, delay=60)
    # A group owner's link in a busy group chat: twenty people behind one carrier address sign
    # up within minutes at their own pace, two of them quickly on iPhones sending one agent.
    reading = random.Random(11)
    for n in range(20):
        ua = IOS_WECHAT if n < 2 else android("V2309A").replace("MMWEBID/6154", f"MMWEBID/{n}")
        delay = 60 if n < 2 else reading.uniform(30, 300)
        world.join(f"member{n}", "groupowner", ip="100.64.201.9", ua=ua, delay=delay)
    flags = world.examine()
    assert referrer_flags(flags) == {"seedsharer"}
    sharer = next(f for f in flags if f.kind == "referrer")
    assert "2 accounts (alt1, alt2) made in a row on one phone" in sharer.reasons[0]
    assert world.reward("alt1") != "credited" and world.reward("alt2") != "credited"
    assert world.reward("kid") == "credited" and world.reward("member1") == "credited"


def test_two_accounts_signed_up_slowly_are_not_made_in_a_row(world: World) -> None:
    # Two people on one home's identical iPhones join under a friend minutes apart, each after
    # reading the page for a while: no flag.
    home = "203.0.113.192"
    world.join("anna", "friend", ip=home, ua=IOS_WECHAT, delay=400)
    world.clock += 120
    world.join("bo", "friend", ip=home, ua=IOS_WECHAT, delay=300)
    assert world.examine() == []


def test_an_account_made_in_a_row_sharing_from_that_phone_is_flagged(world: World) -> None:
    # The spare iPhone's first account shares its own link, and one more account is made under
    # it on the same phone minutes later: it was made for the sharer, and shares for them.
    spare = "203.0.113.193"
    world.join("alt1", "seedsharer", ip=spare, ua=IOS_WECHAT, delay=50)
    world.clock += 200
    world.join("alt2", "seedsharer", ip=spare, ua=IOS_WECHAT, delay=40)
    world.clock += 300
    world.join("alt3", "alt1", ip=spare, ua=IOS_WECHAT, delay=45)
    flags = world.examine()
    assert referrer_flags(flags) == {"seedsharer", "alt1"}
    assert world.reward("alt3") != "credited"


def test_a_family_of_identical_iphones_in_one_hour_is_not_flagged(world: World) -> None:
    # The family case above on the clock of people joining within an hour: the same address and
    # agent is not one phone unless an account is known to be made on it.
    home = "203.0.113.194"
    world.join("mum", "friend", ip=home, ua=IOS_WECHAT, delay=200)
    world.clock += 600
    world.join("dad", "mum", ip=home, ua=IOS_WECHAT, delay=150)
    world.clock += 600
    world.join("kid", "dad", ip=home, ua=IOS_WECHAT, delay=250)
    assert world.examine() == []


def browser_of(wechat: str) -> str:
    """The system browser (QQ Browser) of the Android phone a WeChat agent names."""
    found = re.search(r"Android ([\d.]+); (\S+) Build/([^;)]+)", wechat)
    assert found is not None
    version, model, build = found.groups()
    return (
        f"Mozilla/5.0 (Linux; U; Android {version}; zh-cn; {model} Build/{build}) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/109.0.5414.86 "
        "MQQBrowser/15.6 Mobile Safari/537.36"
    )


def test_an_account_from_the_sharers_phone_browser_sharing_to_another(world: World) -> None:
    # The sharer joined in WeChat on mobile data; minutes later an account is made under them in
    # the phone's system browser (another agent and cookie, the same address, model and build),
    # and it shares to one more account from that browser on a new address.
    phone = android("PJZ110").replace("NetType/WIFI", "NetType/4G")
    world.join("sharer", "someone", ip="100.64.30.3", ua=phone, delay=60)
    world.clock += 200
    browser = world.join("alt", "sharer", ip="100.64.30.3", ua=browser_of(phone), delay=40)
    first = world.examine()
    assert [(f.kind, f.subject) for f in first] == [("participant", "alt")]
    world.clock += 600
    world.join("alt2", "alt", ip="100.64.31.4", ua=browser_of(phone), visitor=browser, delay=45)
    # A household: the mum's and the kid's phones are one model (two WeChat installs).
    mum = android("V2324A")
    world.join("mum", "aunt", ip="203.0.113.195", ua=mum, delay=90)
    kid = mum.replace("MMWEBID/6154", "MMWEBID/2918")
    world.join("kid", "mum", ip="203.0.113.195", ua=kid, delay=120)
    flags = world.examine()
    assert referrer_flags(flags) == {"sharer", "alt"}
    sharer = next(f for f in flags if f.kind == "referrer" and f.subject == "sharer")
    assert "2 accounts (alt, alt2) joined under them from their own device" in sharer.reasons
    assert world.reward("alt2") != "credited"
    assert world.reward("kid") == "credited"


# -- a ring across campaigns, a shared browser in a crowd ---------------------------------------


def test_a_ring_found_in_one_campaign_flags_its_members_sharing_in_another(
    world: World, client: FlaskClient, services: Services, keys: dict[str, str]
) -> None:
    coffee = World(client, services, keys, slug="coffee")
    # In the coffee campaign the ring's members join through each other's links, each on their
    # own phone and network: friends inviting friends, as far as that campaign shows. Dan, a
    # friend of theirs who is in no ring, shares there too.
    phones = {
        "ann": ("198.51.100.61", android("V2227A")),
        "ben": ("198.51.100.62", android("PHB110")),
        "cat": ("198.51.100.63", android("RMX3700")),
    }
    coffee.join("ben", "ann", ip=phones["ben"][0], ua=phones["ben"][1], delay=90)
    coffee.join("cat", "ben", ip=phones["cat"][0], ua=phones["cat"][1], delay=120)
    coffee.join("dan", "ann", ip="198.51.100.64", ua=android("V2055A"), delay=150)
    coffee.join("eve", "dan", ip="198.51.100.65", ua=android("PGT-AN10"), delay=80)
    assert referrer_flags(coffee.examine()) == set()
    # In the tea campaign the ring closes (each member's phone converting on the next one's
    # link), and dan joins there as an honest participant.
    ring_of_three(world)
    world.join("dan", "organiser", ip="198.51.100.64", ua=android("V2055A"))
    tea = world.examine()
    assert {"ann", "ben", "cat"} <= referrer_flags(tea) and "dan" not in referrer_flags(tea)
    # The members whose links drew joins in coffee are flagged there; cat's has drawn none yet.
    flags = coffee.examine()
    assert referrer_flags(flags) == {"ann", "ben"}
    ann = next(f for f in flags if f.kind == "referrer" and f.subject == "ann")
    assert "found in a ring of sharers converting each other's links in campaign tea" in (
        ann.reasons
    )
    assert coffee.reward("ben") != "credited" and coffee.reward("eve") == "credited"
    # Cat's link draws a join in coffee after the ring was found in tea.
    coffee.join("ann-alt", "cat", ip=phones["ann"][0], ua=phones["ann"][1], delay=70)
    assert referrer_flags(coffee.examine()) == {"ann", "ben", "cat"}


def test_an_account_factorys_sharers_are_flagged_in_another_campaign(
    world: World, client: FlaskClient, services: Services, keys: dict[str, str]
) -> None:
    coffee = World(client, services, keys, slug="coffee")
    # In tea, one spare phone makes accounts for fay and gus after its first (the factory case
    # of test_spare_phones_making_accounts_for_several_sharers_flag_them); hal, whose mum's
    # account was made on her phone under him, shares one phone with her household only.
    for name in ("fay", "gus", "hal"):
        world.join(name, "organiser", ip="100.64.3.9", ua=IOS_WECHAT)
    spare = android("FAY-SPARE").replace("MMWEBID/6154", "MMWEBID/4471")
    world.join("alt1", "fay", ip="100.64.7.1", ua=spare)
    world.join("alt2", "gus", ip="100.64.7.2", ua=spare)
    world.join("alt3", "fay", ip="100.64.7.3", ua=spare)
    family = android("V2324A")
    world.join("mum", "hal", ip="203.0.113.180", ua=family)
    world.join("kid", "mum", ip="100.64.8.8", ua=family.replace("NetType/WIFI", "NetType/5G"))
    assert referrer_flags(world.examine()) == {"fay", "gus"}
    # In coffee, fay, gus and hal each draw a join from a friend's own phone.
    for n, name in enumerate(("fay", "gus", "hal")):
        coffee.join(f"pal{n}", name, ip=f"198.51.100.{90 + n}", ua=android(f"PAL{n}"), delay=90)
    flags = coffee.examine()
    assert referrer_flags(flags) == {"fay", "gus"}
    fay = next(f for f in flags if f.subject == "fay")
    assert "found among the sharers one phone made accounts for in campaign tea" in fay.reasons


def test_a_shared_browser_in_a_crowd_is_a_burst_of_that_browsers_accounts(world: World) -> None:
    # A group owner's link draws ten people within minutes, each on their own phone and
    # network, signing up at their own pace; meanwhile two accounts are made in one browser
    # under it. The burst is those two accounts: the people around them are no cluster, and
    # one of them sharing their own link is no member of one.
    reading = random.Random(5)
    for n in range(10):
        world.join(
            f"guest{n}",
            "owner",
            ip=f"198.51.{10 + n}.7",
            ua=android(f"GM{n}"),
            delay=reading.uniform(30, 400),
        )
    browser = world.join("alt1", "owner", ip="203.0.113.201", ua=android("V2309A"), delay=40)
    world.join("alt2", "owner", ip="203.0.113.201", ua=android("V2309A"), visitor=browser, delay=50)
    world.join("friend", "guest3", ip="198.51.40.9", ua=android("PJZ110"), delay=200)
    flags = world.examine()
    assert "owner" in referrer_flags(flags)
    bursts = of(flags, "cluster", "burst:owner")
    assert len(bursts) == 1 and set(bursts[0].members) == {"alt1", "alt2"}
    assert "sharing a browser" in bursts[0].reasons[0]
    assert "guest3" not in referrer_flags(flags)
    assert world.reward("friend") == "credited"


def test_a_slow_chain_grown_from_a_real_participants_account(world: World) -> None:
    # A real participant joins on their own phone and network; an operator who took their
    # account over grows a chain of twelve accounts from it at a person's pace (25 minutes a
    # step), on four phones behind their home's Wi-Fi and a phone's hotspot. The participant's
    # own join is no source of the operator's: the chain's networks are two.
    world.join("victim", "friend", ip="203.0.113.77", ua=android("PJZ110"), delay=120.0)
    phones = [android(model) for model in ("V2241A", "BRA-AL00", "M2012K11AC", "JAD-AL50")]
    parent = "victim"
    for n in range(12):
        world.clock += 25 * 60
        ip = "198.51.100.20" if n % 3 else "100.64.77.5"
        world.join(f"link{n}", parent, ip=ip, ua=phones[n % 4], delay=45.0)
        parent = f"link{n}"
    # A group chat's quick chain: each joins minutes after the one before, the last on her
    # mother's phone; below its first member that is four joins from two phones (a household
    # passing its phones round), which only a long chain's networks may be judged that way.
    world.join("m1", "club", ip="203.0.113.80", ua=android("P1X"), delay=60.0)
    world.join("m2", "m1", ip="100.64.9.1", ua=android("P2X"), delay=70.0)
    world.join("m3", "m2", ip="203.0.113.81", ua=android("P3X"), delay=50.0)
    world.join("m4", "m3", ip="203.0.113.81", ua=android("P3X"), delay=80.0)
    # Friends of friends at that pace from as many phones, the NAT of one carrier, and one home.
    honest_parent = "origin"
    for n in range(12):
        world.clock += 25 * 60 if n == 0 else 0
        ip = "203.0.113.78" if n % 3 else f"100.64.{n % 2}.{n + 10}"
        world.join(f"friend{n}", honest_parent, ip=ip, ua=android(f"F{n}X"), delay=90.0)
        honest_parent = f"friend{n}"
    flags = world.examine()
    chains = of(flags, "cluster", "chain:")
    assert len(chains) == 1 and {f"link{n}" for n in range(12)} <= set(chains[0].members)
    assert "2 network(s)" in chains[0].reasons[0]
    assert {"victim", *(f"link{n}" for n in range(11))} <= referrer_flags(flags)
    # The friend the participant joined under is no part of it.
    assert "friend" not in chains[0].members and "friend" not in referrer_flags(flags)
    assert not {f"friend{n}" for n in range(12)} & referrer_flags(flags)
    assert not {"club", "m1", "m2", "m3"} & referrer_flags(flags)
