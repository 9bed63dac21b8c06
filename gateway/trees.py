"""Tree-level fraud detection: patterns no single click shows, found as joins arrive.

Runs off the click path (a periodic job, and replay on the log's clock). Each accepted conversion
is examined once, in order, with O(depth) reads:

- self-referral through alternate accounts: the new participant joined from the sharer's own
  browser, app install or address-and-device, or from another app or the system browser of the
  Android phone the sharer joined from (an account made on the phone it shares from counts for
  the phone's owner, or for the sharer it was made for, too; two such accounts flag the sharer
  when made within half an hour of each other: a family's come hours apart as often as not),
  or several accounts under one sharer from one phone, or two made there in a row (minutes
  apart, each signed up right after its click: an iPhone without cookies is known by its
  address and agent for that long);
- account factories: one phone making accounts under two or more sharers after its first (a
  ring's spare phones, a farm's phones, an alternate account sharing to more alternates);
- sybil chains: a chain of joins, each within minutes of the one before, from few devices or
  networks (below the account the chain grew from, which may be a real participant's);
- star bursts: many children under one sharer within minutes, from few phones, or from few
  networks with phones making several accounts each, or at a clockwork rhythm or a practised
  pace (sign-ups each as long after their click); many people on a carrier's NAT, each on their
  own phone and at their own pace, are a crowd, not a burst (a browser shared in such a crowd
  makes a burst of that browser's accounts only);
- rings: sharers whose own devices converted on each other's links, in a cycle;
- collusion across campaigns: a ring's members, and the sharers an account factory made
  accounts for, are flagged in the other campaigns where their links draw joins too (they
  reconvene there through each other's links: friends inviting friends, as far as one campaign
  shows);
- clusters: participants sharing one browser under sharers from outside it, or a network prefix
  filled with joins under one sharer from reused phones or at a practised pace (carrier NAT
  spreads its joins over unrelated sharers; a farm does not);
- a scripted pace: most of a sharer's sign-ups arriving seconds after their clicks.

Findings become ``referrer``, ``participant`` and ``cluster`` flags (with members); raising a
flag holds the rewards it touches (gateway.rewards).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from detectors.conversion import QUICK_JOIN, QUICK_MIN, QUICK_SHARE
from detectors.selfreferral import SMALL_NETWORK
from gateway.campaigns import Campaign, CampaignService
from gateway.clickcall import agent_hash, ip_visitors, visitors_behind
from gateway.flags import FlagCandidate, FlagService
from gateway.jobs import FlaggingJob
from gateway.store import keys
from gateway.store.follow import STREAM_BATCH, follow

BATCH = STREAM_BATCH
#: Chains: links joined within this many seconds of their parent, at least this long, from at
#: most this many distinct devices or networks.
CHAIN_GAP = 600
CHAIN_MIN = 5
#: A fast chain from few networks but many devices is flagged only from this length on.
CHAIN_LONG = 9
CHAIN_MAX_SOURCES = 2
#: Slow chains: links joined within this many seconds of their parent (an operator pausing like
#: a person between accounts). Judged on sources alone, with more links needed: a household
#: passes one or two phones down a few generations over an evening, and friends of friends in
#: one town may share a carrier's NAT for a few more.
SLOW_CHAIN_GAP = 3 * 3600
SLOW_CHAIN_MIN = 8
SLOW_CHAIN_LONG = 12
#: Star bursts: this many children of one sharer within the window, concentrated.
BURST_WINDOW = 900
BURST_MIN = 8
#: At most this many phones per join: phones made several accounts each (a studio's, a farm's).
#: One family's shared phone in a crowd of ten or more people stays above it.
REUSED = 0.8
#: Prefix clusters: joins from one /24 within an hour, mostly under one sharer.
PREFIX_MIN = 8
PREFIX_CONCENTRATION = 0.8
#: ... and they make at least this share of that sharer's joins in the hour.
PREFIX_SHARE_OF_SHARER = 0.5
#: Sharers under whom one phone made accounts after its first before they are flagged: one is a
#: household sharing a phone (a child signing up on a parent's phone, under the parent).
FACTORY_SHARERS = 2
#: Sign-ups whose delays after their clicks vary less than this (coefficient of variation), over
#: at least this many of them, came at a practised pace. People's delays spread near 1, but a
#: group owner's twelve friends signing up in one quarter of an hour come down to 0.25 by chance
#: (one in the five training simulations, 0.25-0.28 in three more); farms' and bursts' quarters
#: of an hour stay below 0.18.
PRACTISED_CV = 0.2
PRACTISED_MIN = 12
#: Joins under one sharer whose gaps vary less than this (coefficient of variation) came at a
#: clockwork rhythm: a studio's cadence (its window divided evenly, give or take a fifth) stays
#: near 0.1 and a failed sign-up's doubled gap takes it to 0.2 at most. People's gaps spread
#: near 1, but the burst window slides over every join of thousands of sharers, and eight friends
#: of a group owner in a quarter of an hour come down to 0.22-0.25 by chance (three honest
#: sharers in the thirteen training and design simulations at 0.25, each flagged with the
#: friends who shared among its members); the bound is PRACTISED_CV's for the same reason.
CLOCKWORK_CV = 0.2
#: How long device ownership (for rings) and join indexes are kept.
INDEX_TTL = 7 * 86400
#: Accounts joined from the sharer's own device before the sharer is flagged.
SELF_REFERRAL_MIN = 2
#: Sharers a ring closed by a home's address (not a device) must have.
HOME_RING_MIN = 3
#: Accounts joined under one sharer from one phone that is not known as the sharer's (a sharer
#: who never joined through a link has no known devices) before the sharer is flagged: two is
#: a parent and a child signing up on one phone.
ONE_PHONE_MIN = 3

#: Two accounts under one sharer from one phone (its browser, install, address-and-agent at a
#: home, or the same address and agent whatever it is) are accounts made in a row when they
#: joined within this many seconds of each other, each this soon after its click, and the
#: sharer drew at most PAIR_CROWD joins in the hour around them.
PAIR_WINDOW = 1800
PAIR_QUICK = 180.0
PAIR_CROWD = 8
#: A join from the address and agent its parent joined from, this soon after, came from the
#: parent's phone (an address's other phones may send the same agent over hours).
SESSION = 3600


#: Collusion found in one campaign that flags its sharers in the others, and why.
COLLUSION = {
    "ring": "found in a ring of sharers converting each other's links",
    "factory": "found among the sharers one phone made accounts for",
}

#: Joins kept per process for the detectors' rereads (about 300 bytes each).
JOIN_CACHE = 200_000


def _parse_join(user: str, raw: dict[bytes, bytes]) -> Join | None:
    if not raw or not raw.get(b"parent"):
        return None
    data = {k.decode(): v.decode() for k, v in raw.items()}
    return Join(
        user=user,
        parent=data["parent"],
        ts=float(data["joined"]),
        visitor=data.get("visitor", ""),
        device=data.get("device", ""),
        prefix=data.get("prefix", ""),
        path=tuple(p for p in data.get("path", "").split("/") if p),
        click=data.get("click", ""),
    )


@dataclass(frozen=True)
class Join:
    user: str
    parent: str
    ts: float
    visitor: str
    #: Address-and-agent (gateway.clickcall.device_key): the same phone behind the same address.
    device: str
    prefix: str
    path: tuple[str, ...]
    #: The click the participant joined through, and from its record: when it was made, the
    #: address (salted hash) and whether that address is a home's (a few browsers behind it
    #: that hour, not a carrier NAT); filled when the join is examined.
    click: str = ""
    clicked: float | None = None
    ip: str = ""
    home: bool = False
    #: WeChat on Android names its install in the agent (``MMWEBID/<n>``, with the phone's model,
    #: build and versions): the same agent there is the same app on the same phone at any address
    #: (a hash of the agent without its network type, which changes between Wi-Fi and mobile
    #: data); empty for agents that name no install (an iPhone's is shared by every iPhone on
    #: one iOS and WeChat version).
    install: str = ""
    #: The agent (a hash), and the phone behind the address whatever the app: an Android agent
    #: names the phone's model and build in WeChat, the other apps' webviews and the system
    #: browser alike (a hash of the address with them; empty for agents naming none). Within a
    #: session, the system browser and WeChat of one phone on one address are one phone; over
    #: a day, behind a carrier NAT, strangers with one popular model are not (so this is no
    #: phone id of its own: see _other_app).
    agent: str = ""
    hardware: str = ""

    def phone_ids(self) -> set[str]:
        """What identifies the phone this join came from: its browser, its address-and-agent,
        its app install."""
        return {i for i in (self.visitor, self.device, self.install and "in:" + self.install) if i}

    def session_id(self) -> str:
        """The address and agent, whatever the agent: within a session (minutes, not days) the
        same string from the same address is one phone, even an iPhone's that names no device
        and sends no cookie; over hours an address's other phones may send it too."""
        return f"ss:{self.ip}|{self.agent}" if self.ip and self.agent else ""

    def telling_phone_ids(self) -> list[str]:
        """The ids that tell this phone from strangers' at its address: a browser or an app
        install anywhere, an address-and-agent only at a home's address (behind a carrier NAT,
        strangers with one phone model and app version look alike)."""
        found = (
            self.visitor,
            self.device if self.home else "",
            self.install and "in:" + self.install,
        )
        return [i for i in found if i]


class TreeWatch(FlaggingJob):
    def __init__(self, store: Any, campaigns: CampaignService, flags: FlagService) -> None:
        super().__init__(store, campaigns, flags)
        #: Campaign id -> participant -> their join (see _joins).
        self._join_cache: dict[int, dict[str, Join]] = {}
        #: (campaign id, participant) pairs whose collusion was already carried to the other
        #: campaigns (see _collusion_found): a ring's flag is raised again at each of its joins.
        self._collusion_carried: set[tuple[int, str]] = set()

    def run_campaign(self, campaign: Campaign, now: float) -> int:
        ck = keys.campaign_keys(campaign.id)

        def examine(entries: list[Any]) -> int:
            raised = 0
            for _, fields in entries:
                if fields.get(b"status") == b"accepted":
                    join = self._join(ck, fields[b"user"].decode())
                    if join is not None:
                        raised += self._examine(campaign, ck, join, now)
            return raised

        return follow(
            self._redis,
            ck.conversions,
            ck.job_cursors,
            "trees_cursor",
            examine,
            BATCH,
            legacy=ck.counters,
        )

    # -- reading a join ---------------------------------------------------------------------------

    def _join(self, ck: keys.CampaignKeys, user: str) -> Join | None:
        return self._joins(ck, [user])[0]

    def _joins(self, ck: keys.CampaignKeys, users: list[str]) -> list[Join | None]:
        """The joins of ``users`` (None for a root or an unknown id), in one pipelined read for
        those not seen before. A join never changes once made, so they are kept (up to
        JOIN_CACHE per process): the chain and burst detectors reread the same ancestors and
        siblings at every join."""
        cache = self._join_cache.setdefault(ck.campaign_id, {})
        missing = [user for user in dict.fromkeys(users) if user not in cache]
        if missing:
            pipe = self._redis.pipeline(transaction=False)
            for user in missing:
                pipe.hgetall(ck.participant(user))
            for user, raw in zip(missing, pipe.execute(), strict=True):
                join = _parse_join(user, raw)
                if join is not None:  # roots and unknown ids may change: not kept
                    if len(cache) >= JOIN_CACHE:
                        cache.pop(next(iter(cache)))
                    cache[user] = join
                else:
                    cache.pop(user, None)
            found = {user: cache.get(user) for user in missing}
        else:
            found = {}
        return [cache.get(user, found.get(user)) for user in users]

    def _keep(self, ck: keys.CampaignKeys, join: Join) -> None:
        """Keep a join with what its click says: later joins compare their phone with it."""
        cache = self._join_cache.setdefault(ck.campaign_id, {})
        if join.user in cache:
            cache[join.user] = join

    def _with_click(self, ck: keys.CampaignKeys, join: Join) -> Join:
        raw = self._redis.get(ck.click(join.click)) if join.click else None
        if raw is None:
            return join  # the click's record is gone (or the join was imported)
        event = orjson.loads(raw)
        ip, clicked = event.get("ip_hash") or "", float(event["ts"])
        home = False
        if ip:
            behind = visitors_behind(self._redis.hget(*ip_visitors(ck, ip, int(clicked) // 3600)))
            home = 1 <= behind <= SMALL_NETWORK
        ua = event.get("ua") or ""
        return replace(
            join,
            clicked=clicked,
            ip=ip,
            home=home,
            install=install_of(ua),
            agent=agent_hash(ua) if ua else "",
            hardware=hardware_of(ip, ua),
        )

    def _examine(self, campaign: Campaign, ck: keys.CampaignKeys, join: Join, now: float) -> int:
        join = self._with_click(ck, join)
        self._keep(ck, join)
        found = [
            *self._self_referral(ck, join),
            *self._one_phone(ck, join),
            *self._factory(ck, join),
            *self._chain(ck, join),
            *self._burst(ck, join),
            *self._ring(ck, join),
            *self._collusion_elsewhere(ck, join),
            *self._shared_browser(ck, join),
            *self._prefix_cluster(ck, join),
            *self._pace(ck, join),
        ]
        self._remember(ck, join)
        raised = 0
        for candidate in found:
            _, new = self._flags.raise_flag(campaign.id, campaign.slug, candidate, now)
            raised += new
        colluders: dict[str, str] = {}
        for candidate in found:
            if candidate.kind == "cluster" and candidate.subject.startswith("ring:"):
                colluders.update(dict.fromkeys(candidate.members, "ring"))
        for candidate in found:
            if candidate.source == "tree:factory":
                colluders.setdefault(candidate.subject, "factory")
        if colluders:
            raised += self._collusion_found(campaign, colluders, now)
        return raised

    # -- detectors ------------------------------------------------------------------------------

    def _parent_join(self, ck: keys.CampaignKeys, join: Join) -> Join | None:
        """The parent's own join (None for a root), with what its click says."""
        parent = self._join(ck, join.parent)
        if parent is not None and parent.clicked is None and parent.click:
            parent = self._with_click(ck, parent)  # not examined in this process
            self._keep(ck, parent)
        return parent

    def _self_referral(self, ck: keys.CampaignKeys, join: Join) -> list[FlagCandidate]:
        owners = self._owners(ck, join)
        parent = self._parent_join(ck, join)
        # The parent's own join came from this phone: the sharer is an account of this phone,
        # even when the phone's first owner is someone else (an alternate account made on its
        # owner's phone, now sharing to more accounts from it).
        made_on_raw = self._redis.hget(ck.made_on, join.parent)
        made_on = made_on_raw.decode() if made_on_raw is not None else ""
        known_alternate = bool(made_on) and made_on in join.path
        lineage = parent is not None and (
            bool(parent.phone_ids() & join.phone_ids())
            or _other_app(parent, join)
            # The same address and agent an hour apart is a family's identical iPhones as often
            # as one phone: one only when the parent is known as an account made on a phone.
            or (known_alternate and _same_agent(parent, join))
        )
        if lineage:
            owners.add(join.parent)
        if join.parent not in owners:
            return []
        why = f"{join.user} joined from {join.parent}'s own browser or device"
        # The join itself is held (its reward is the one at stake). The sharer is flagged only
        # from the second such account on: one extra account on the same phone is also what a
        # family member signing up on a parent's phone looks like.
        found = [
            FlagCandidate(
                "participant",
                join.user,
                0.9,
                (why,),
                source="tree:self",
                evidence={"parent": join.parent},
            )
        ]
        # Accounts made on a phone count for its owner however deep below them they joined: an
        # account made on the owner's phone (under the owner) signing up more from that phone,
        # and for the sharer on whose phone (or for whom on one phone) the parent's own account
        # was made, when that is known: the parent is one of their alternate accounts.
        above = set(join.path[:-1]) & owners if lineage else set()
        made_for = join.parent
        if lineage and known_alternate:
            made_for = made_on
            above.add(made_for)
        self._made_on(ck, made_for, [join.user])
        for sharer in sorted({join.parent, *above}):
            alternates_key = ck.own_device_joins(sharer)
            self._redis.sadd(alternates_key, join.user)
            if sharer != join.parent:
                self._redis.sadd(alternates_key, join.parent)
            self._redis.expire(alternates_key, INDEX_TTL)
            alternates = sorted(m.decode() for m in self._redis.smembers(alternates_key))
            if len(alternates) < SELF_REFERRAL_MIN:
                continue
            if len(alternates) == SELF_REFERRAL_MIN and not self._made_together(ck, alternates):
                # Two family members signing up on a parent's phone come when each gets round
                # to it, hours apart as often as not; a sharer making alternate accounts makes
                # them minutes apart (and a third account flags them whenever it comes).
                continue
            found.append(
                FlagCandidate(
                    "referrer",
                    sharer,
                    0.9,
                    (
                        f"{len(alternates)} accounts ({', '.join(alternates[:5])}) joined under "
                        "them from their own device",
                    ),
                    source="tree:self",
                )
            )
            if sharer != join.parent:
                # The account in between was made on the owner's phone and shares from it.
                found.append(
                    FlagCandidate(
                        "referrer",
                        join.parent,
                        0.85,
                        (f"made on {sharer}'s phone, and {join.user} joined under them from it",),
                        source="tree:self",
                    )
                )
        return found

    def _made_together(self, ck: keys.CampaignKeys, accounts: list[str]) -> bool:
        """Whether two of ``accounts`` joined within PAIR_WINDOW of each other."""
        times = sorted(j.ts for j in self._joins(ck, accounts) if j is not None)
        return any(b - a <= PAIR_WINDOW for a, b in itertools.pairwise(times))

    def _one_phone(self, ck: keys.CampaignKeys, join: Join) -> list[FlagCandidate]:
        most: list[str] = []
        in_a_row: list[str] = []
        session = join.session_id()
        for phone in [*join.telling_phone_ids(), session]:
            if not phone:
                continue
            key = ck.phone_joins(join.parent, phone)
            self._redis.sadd(key, join.user)
            self._redis.expire(key, INDEX_TTL)
            members = sorted(m.decode() for m in self._redis.smembers(key))
            if phone != session:
                most = max(most, members, key=len)
            if not in_a_row and len(members) >= 2:
                in_a_row = self._in_a_row(ck, join, members)
        if len(most) >= ONE_PHONE_MIN:
            self._made_on(ck, join.parent, most)
            why = f"{len(most)} accounts ({', '.join(most[:5])}) joined under them from one phone"
            return [FlagCandidate("referrer", join.parent, 0.85, (why,), source="tree:self")]
        if in_a_row:
            self._made_on(ck, join.parent, in_a_row)
            why = (
                f"{len(in_a_row)} accounts ({', '.join(in_a_row)}) made in a row on one phone "
                f"joined under them, each within {PAIR_QUICK:.0f} s of its click"
            )
            return [FlagCandidate("referrer", join.parent, 0.8, (why,), source="tree:self")]
        return []

    def _in_a_row(self, ck: keys.CampaignKeys, join: Join, members: list[str]) -> list[str]:
        """Accounts made in a row on the phone ``join`` came from: another join under the same
        sharer from it within PAIR_WINDOW, both signed up within PAIR_QUICK of their clicks
        (people read the page first; someone making accounts knows it). A family sharing one
        phone signs up when each gets round to it; a sharer whose link draws a crowd (more
        than PAIR_CROWD joins that hour) is judged by the burst and prefix detectors."""
        if not _quick(join):
            return []
        crowd = self._redis.zcount(
            ck.children(join.parent), join.ts - PAIR_WINDOW * 2, join.ts + PAIR_WINDOW * 2
        )
        if crowd > PAIR_CROWD:
            return []
        others = [m for m in members if m != join.user]
        for other in self._joins(ck, others):
            if other is None or abs(join.ts - other.ts) > PAIR_WINDOW:
                continue
            if other.clicked is None and other.click:
                other = self._with_click(ck, other)
                self._keep(ck, other)
            if _quick(other):
                return sorted((other.user, join.user))
        return []

    def _made_on(self, ck: keys.CampaignKeys, sharer: str, accounts: list[str]) -> None:
        """Remember the accounts made on ``sharer``'s phone (or for them on one phone): joins
        under those accounts from the same phone count for the sharer too."""
        if accounts:
            self._redis.hset(ck.made_on, mapping=dict.fromkeys(accounts, sharer))
            self._redis.expire(ck.made_on, INDEX_TTL)

    def _factory(self, ck: keys.CampaignKeys, join: Join) -> list[FlagCandidate]:
        """One phone making accounts for several sharers.

        A phone's first account is its owner's own; a later one under the owner is a child or a
        parent on a shared phone (or the owner's alternate: the self-referral detectors judge
        that). Later accounts under two or more sharers make the phone an account factory and its
        sharers its customers: a ring's spare phones signing up on each other's links, a farm's
        phones serving a few customers, an alternate account sharing to more alternates.
        """
        phones = sorted(join.telling_phone_ids())
        if not phones:
            return []
        owners = self._redis.hmget(ck.device_owners, phones)
        found: list[FlagCandidate] = []
        for phone, owner in zip(phones, owners, strict=True):
            if owner is None or owner.decode() == join.user:
                continue  # the phone's first account: its owner's own
            key = ck.phone_sharers(phone)
            self._redis.sadd(key, join.parent)
            self._redis.expire(key, INDEX_TTL)
            sharers = sorted(m.decode() for m in self._redis.smembers(key))
            if len(sharers) < FACTORY_SHARERS:
                continue
            why = (
                f"accounts made on one phone (first used by {owner.decode()}) joined under "
                f"{len(sharers)} sharers: {', '.join(sharers[:6])}"
            )
            found += [
                FlagCandidate("referrer", sharer, 0.85, (why,), source="tree:factory")
                for sharer in sharers
            ]
            break  # one phone's finding is enough
        return found

    def _chain(self, ck: keys.CampaignKeys, join: Join) -> list[FlagCandidate]:
        chain = self._walk(ck, join, CHAIN_GAP)
        found = self._judge_chain(chain, CHAIN_MIN, CHAIN_LONG)
        if not found and len(chain) == len(join.path) + 1:
            return []  # the fast walk reached the root: a slow walk finds nothing longer
        if not found:
            # The same few phones or networks behind a deep chain grown at a person's pace.
            slow = self._walk(ck, join, SLOW_CHAIN_GAP)
            if len(slow) > len(chain):
                found = self._judge_chain(slow, SLOW_CHAIN_MIN, SLOW_CHAIN_LONG)
        return found

    def _walk(self, ck: keys.CampaignKeys, join: Join, gap: float) -> list[Join]:
        """Up from the new participant while each link joined within ``gap`` of its parent."""
        chain = [join]
        ancestors = list(reversed(join.path))[:41]
        for ancestor, above in zip(ancestors, self._joins(ck, ancestors), strict=True):
            if len(chain) > 40:
                break
            if above is None or chain[-1].ts - above.ts > gap:
                if above is None:
                    # A root: include it when the chain below it was quick enough.
                    root = self._redis.hget(ck.participant(ancestor), "joined")
                    if root is not None and chain[-1].ts - float(root) <= gap:
                        chain.append(Join(ancestor, "", float(root), "", "", "", ()))
                break
            chain.append(above)
        return chain

    def _judge_chain(self, chain: list[Join], shortest: int, long: int) -> list[FlagCandidate]:
        if len(chain) < shortest:
            return []
        members = [link for link in chain if link.prefix or link.device or link.visitor]
        sources = _few_sources(members, len(chain) >= long)
        if sources is None and len(members) > 1:
            # The account a long chain grows from (its topmost join) may be a real
            # participant's, an operator's customer or an account taken over, joined on its
            # owner's own phone and network: the links made from it show the operator's
            # networks. Whoever that account joined under is no part of the chain then. (Only
            # for the networks of a long chain: four links from two phones in minutes are also
            # a household passing its phones round.)
            top = next(n for n, link in enumerate(chain) if link is members[-1])
            chain, members = chain[: top + 1], members[:-1]
            if len(chain) >= max(shortest, long):
                sources = _few_sources(members, True, by_phones=False)
        if sources is None:
            return []
        networks, phones = sources
        names = tuple(link.user for link in reversed(chain))
        minutes = (chain[0].ts - chain[-1].ts) / 60
        why = (
            f"a chain of {len(chain)} joins in {minutes:.0f} min from {networks} "
            f"network(s), {phones} phone(s)"
        )
        candidates = [
            FlagCandidate(
                "cluster", f"chain:{names[0]}", 0.9, (why,), members=names, source="tree:chain"
            )
        ]
        candidates += [
            FlagCandidate("referrer", name, 0.85, (f"part of {why}",), source="tree:chain")
            for name in names[:-1]
        ]
        return candidates

    def _burst(self, ck: keys.CampaignKeys, join: Join) -> list[FlagCandidate]:
        recent = [
            c.decode()
            for c in self._redis.zrangebyscore(
                ck.children(join.parent), join.ts - BURST_WINDOW, join.ts
            )
        ]
        if len(recent) < BURST_MIN:
            return []
        children = [c for c in self._joins(ck, recent) if c is not None]
        networks = {c.prefix for c in children}
        devices = _phones(children)
        visitors = [c.visitor for c in children if c.visitor]
        shared_browser = len(visitors) != len(set(visitors))
        gaps = sorted(b.ts - a.ts for a, b in itertools.pairwise(children))
        regular = len(gaps) >= 5 and _cv(gaps) < CLOCKWORK_CV
        practised = _practised(children)
        # Few networks alone is a crowd on a carrier's NAT (a group chat in one city, a festival
        # evening): it counts when phones made several accounts each as well.
        few_networks = len(networks) <= len(children) / 3 and devices <= len(children) * REUSED

        concentrated = few_networks or devices <= len(children) / 3
        if not (concentrated or shared_browser or regular or practised):
            return []
        why = (
            f"{len(children)} children joined within {BURST_WINDOW // 60} min from "
            f"{len(networks)} network(s), {devices} device(s)"
            + (", sharing a browser" if shared_browser else "")
            + (", at clockwork intervals" if regular else "")
            + (", each signing up as quickly after the click" if practised else "")
        )
        members = tuple(c.user for c in children)
        if not (concentrated or regular or practised):
            # Only a browser shared among a crowd of otherwise distinct people (their own
            # phones, networks and paces): the accounts made in that browser are the finding,
            # not the crowd around them, whose members each joined on their own (a group
            # owner's chat drawing twenty people while the sharer signs up an alternate
            # account or two on their phone; the people who joined share their own links).
            members = tuple(c.user for c in children if visitors.count(c.visitor) > 1)
        return [
            FlagCandidate("referrer", join.parent, 0.9, (why,), source="tree:burst"),
            FlagCandidate(
                "cluster", f"burst:{join.parent}", 0.9, (why,), members=members, source="tree:burst"
            ),
        ]

    def _ring(self, ck: keys.CampaignKeys, join: Join) -> list[FlagCandidate]:
        # An edge X -> P: sharer X's own device converted on P's link, or (weaker) a device at
        # X's home did: a spare phone behind the address X joined from, a home's and not a
        # carrier NAT's.
        owners = self._owners(ck, join) - {join.user, join.parent}
        home = self._home_owner(ck, join)
        home_only = {home} - owners - {join.user, join.parent, ""}
        found: list[FlagCandidate] = []
        for owner in owners | home_only:
            self._redis.sadd(ck.ring_edges(owner), join.parent)
            self._redis.expire(ck.ring_edges(owner), INDEX_TTL)
            # Two households signing up on each other's links is what friends do: a home edge
            # closes a ring only of three sharers or more.
            shortest = 1 if owner not in home_only else HOME_RING_MIN - 1
            cycle = self._cycle(ck, start=join.parent, target=owner, shortest=shortest)
            if cycle:
                members = tuple(sorted({owner, *cycle}))
                why = f"sharers converting each other's links: {' → '.join([owner, *cycle, owner])}"
                found.append(
                    FlagCandidate(
                        "cluster",
                        "ring:" + ",".join(members),
                        0.9,
                        (why,),
                        members=members,
                        source="tree:ring",
                    )
                )
                found += [
                    FlagCandidate("referrer", m, 0.85, (why,), source="tree:ring") for m in members
                ]
        return found

    def _collusion_elsewhere(self, ck: keys.CampaignKeys, join: Join) -> list[FlagCandidate]:
        """A sharer found colluding in another campaign drawing a join in this one.

        A ring is a group of people who agreed to convert each other's links; an account
        factory's phone makes accounts for a few sharers (a ring's spare phones, a farm's): when
        another campaign runs, the same accounts join it through each other's links, each on
        their own phone and network, which in that campaign alone looks like friends inviting
        friends. The collusion shows in one campaign only (where the members sign up their
        alternate accounts), so what was found there is carried to the others: here, when the
        member's link draws a join after it was found; _collusion_found, when it is found
        after."""
        found = self._redis.hget(keys.COLLUDERS, join.parent)
        if found is None:
            return []
        campaign_id, _, finding = found.decode().partition("|")
        if int(campaign_id) == ck.campaign_id or finding not in COLLUSION:
            return []
        return [self._colluder_elsewhere(join.parent, int(campaign_id), finding)]

    def _collusion_found(self, campaign: Campaign, colluders: dict[str, str], now: float) -> int:
        """Remember the sharers found colluding in ``campaign`` (participant -> finding) and flag
        those already sharing in other campaigns (their links drew joins there)."""
        pipe = self._redis.pipeline(transaction=False)
        for member, finding in colluders.items():
            pipe.hsetnx(keys.COLLUDERS, member, f"{campaign.id}|{finding}")
        pipe.expire(keys.COLLUDERS, INDEX_TTL)
        pipe.execute()
        pending = sorted(m for m in colluders if (campaign.id, m) not in self._collusion_carried)
        if not pending:
            return 0
        self._collusion_carried.update((campaign.id, m) for m in pending)
        raised = 0
        for other in self._campaigns.list():
            if other.id == campaign.id:
                continue
            children = keys.campaign_keys(other.id).children
            pipe = self._redis.pipeline(transaction=False)
            for member in pending:
                pipe.zcard(children(member))
            for member, joins in zip(pending, pipe.execute(), strict=True):
                if joins:
                    candidate = self._colluder_elsewhere(member, campaign.id, colluders[member])
                    _, new = self._flags.raise_flag(other.id, other.slug, candidate, now)
                    raised += new
        return raised

    def _colluder_elsewhere(self, member: str, campaign_id: int, finding: str) -> FlagCandidate:
        where = self._campaigns.get_by_id(campaign_id)
        name = where.slug if where is not None else f"#{campaign_id}"
        why = f"{COLLUSION[finding]} in campaign {name}"
        return FlagCandidate("referrer", member, 0.85, (why,), source=f"tree:{finding}")

    def _cycle(
        self, ck: keys.CampaignKeys, start: str, target: str, limit: int = 5, shortest: int = 1
    ) -> list[str]:
        """A path start -> ... -> target along ring edges of at least ``shortest`` and at most
        ``limit`` sharers before the target, or []."""
        frontier: list[list[str]] = [[start]]
        seen = {start, target}
        for _ in range(limit):
            following: list[list[str]] = []
            for path in frontier:
                for nxt in (n.decode() for n in self._redis.smembers(ck.ring_edges(path[-1]))):
                    if nxt == target and len(path) >= shortest:
                        return path
                    if nxt not in seen and len(seen) < 200:
                        seen.add(nxt)
                        following.append([*path, nxt])
            frontier = following
        return []

    def _shared_browser(self, ck: keys.CampaignKeys, join: Join) -> list[FlagCandidate]:
        if not join.visitor:
            return []
        key = ck.browser_joins(join.visitor)
        self._redis.sadd(key, join.user)
        self._redis.expire(key, INDEX_TTL)
        members = tuple(sorted(m.decode() for m in self._redis.smembers(key)))
        if len(members) < 2:
            return []
        # One lineage on one phone (a sharer, and accounts that joined under them or under each
        # other from it) is the self-referral detectors' case: one extra account is a child on
        # a parent's phone (that join alone is held), more flag the sharer. A cluster of it
        # held the sharer's own join and every reward under them: in the simulations, nearly
        # every honest household sharing a phone. The browser is a lead of its own only when
        # it joined under sharers from outside it.
        joined = {m: j for m, j in zip(members, self._joins(ck, list(members)), strict=True) if j}
        outside = {m for m, j in joined.items() if j.parent not in joined}
        if len(outside) < 2:
            return []
        why = f"{len(members)} participants joined from one browser"
        return [
            FlagCandidate(
                "cluster",
                f"browser:{join.visitor[:10]}",
                0.85,
                (why,),
                members=members,
                source="tree:browser",
            )
        ]

    def _prefix_cluster(self, ck: keys.CampaignKeys, join: Join) -> list[FlagCandidate]:
        if not join.prefix:
            return []
        key = ck.prefix_joins(join.prefix, int(join.ts) // 3600)
        self._redis.hset(key, join.user, join.parent)
        self._redis.expire(key, INDEX_TTL)
        joins = {k.decode(): v.decode() for k, v in self._redis.hgetall(key).items()}
        if len(joins) < PREFIX_MIN:
            return []
        parent, count = max(_count(joins.values()).items(), key=lambda item: item[1])
        if count / len(joins) < PREFIX_CONCENTRATION:
            return []  # many unrelated sharers behind one network: carrier NAT
        hour = int(join.ts) // 3600 * 3600
        sharer_joins = self._redis.zcount(ck.children(parent), hour, hour + 3599.999)
        if count < sharer_joins * PREFIX_SHARE_OF_SHARER:
            # A viral sharer whose invitations spread over many networks, this one being their
            # city's carrier NAT: the prefix is a slice of their reach, not its source.
            return []
        members = tuple(sorted(u for u, p in joins.items() if p == parent))
        # A group of friends on one carrier's NAT fills a prefix too: each on their own phone,
        # signing up at their own pace. Accounts made in a row share phones or a practised pace.
        made = [j for j in self._joins(ck, list(members)) if j is not None]
        if _phones(made) > len(made) * REUSED and not _practised(made):
            return []
        why = f"{count} of {len(joins)} joins from {join.prefix} this hour are under {parent}"
        return [
            FlagCandidate(
                "cluster",
                f"prefix:{join.prefix}:{parent}",
                0.75,
                (why,),
                members=members,
                source="tree:prefix",
            ),
            FlagCandidate("referrer", parent, 0.75, (why,), source="tree:prefix"),
        ]

    def _pace(self, ck: keys.CampaignKeys, join: Join) -> list[FlagCandidate]:
        if join.clicked is None:
            return []
        delay = join.ts - join.clicked
        key = ck.join_pace(join.parent)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hincrby(key, "joins", 1)
        pipe.hincrby(key, "quick", 1 if 0 <= delay < QUICK_JOIN else 0)
        pipe.expire(key, INDEX_TTL)
        joins, quick, _ = pipe.execute()
        if joins < QUICK_MIN or quick < joins * QUICK_SHARE:
            return []
        why = f"{quick} of {joins} sign-ups under them came within {QUICK_JOIN:.0f} s of the click"
        return [FlagCandidate("referrer", join.parent, 0.8, (why,), source="tree:fast")]

    # -- indexes --------------------------------------------------------------------------------

    def _owners(self, ck: keys.CampaignKeys, join: Join) -> set[str]:
        """Participants whose own browser or device this join came from."""
        ids = sorted(join.phone_ids())
        if not ids:
            return set()
        return {o.decode() for o in self._redis.hmget(ck.device_owners, ids) if o is not None}

    def _home_owner(self, ck: keys.CampaignKeys, join: Join) -> str:
        """The participant who first joined from this join's address, when it is a home's."""
        if not join.home:
            return ""
        owner = self._redis.hget(ck.device_owners, "ip:" + join.ip)
        return owner.decode() if owner is not None else ""

    def _remember(self, ck: keys.CampaignKeys, join: Join) -> None:
        """The new participant owns their browser, device and app install, and their home's
        address (first owner wins)."""
        for device in (*join.phone_ids(), "ip:" + join.ip if join.home else ""):
            if device:
                self._redis.hsetnx(ck.device_owners, device, join.user)


#: The mark of an agent that names its app install (WeChat on Android).
_INSTALL_MARK = "MMWEBID/"
_NET_TYPE = re.compile(r"\s*NetType/\S+")


#: An Android agent's OS version, model and build (``Android 14; 23127PN0CC Build/UP1A...``, with
#: a language (``zh-cn;``) before the model in older browsers' agents).
_HARDWARE = re.compile(r"Android ([\d.]+);(?: [a-z]{2}-[a-z]{2};)? ([^;)]+?) Build/([^;)\s]+)")


def hardware_of(ip: str, ua: str) -> str:
    """The phone behind an address whatever the app (a hash of the address, the Android version,
    model and build its agent names), or "" when the agent names no model and build."""
    if not ip or "Build/" not in ua:
        return ""
    found = _HARDWARE.search(ua)
    if found is None:
        return ""
    named = "|".join((ip, *found.groups()))
    return hashlib.blake2b(named.encode(), digest_size=6).hexdigest()


def install_of(ua: str) -> str:
    """The app install an agent names (a hash), or "" when it names none."""
    if _INSTALL_MARK not in ua:
        return ""
    return hashlib.blake2b(_NET_TYPE.sub("", ua).encode(), digest_size=6).hexdigest()


def _phones(joins: Iterable[Join]) -> int:
    """How many distinct phones made these joins.

    A join whose device, browser (visitor id) or app install was seen before is the same phone. A
    join with none (an agent that names no device, no cookie) counts as one more: unknown is not
    same.
    """
    phones, seen = 0, set[str]()
    for join in joins:
        ids = join.phone_ids()
        phones += not ids & seen
        seen |= ids
    return phones


def _few_sources(links: list[Join], long: bool, by_phones: bool = True) -> tuple[int, int] | None:
    """(networks, phones) of a chain's links when they are few enough to be one operator's:
    at most CHAIN_MAX_SOURCES phones (``by_phones``), or as few networks for a ``long`` chain
    (few networks alone is what carrier NAT does to honest friends); None otherwise."""
    networks = len({link.prefix for link in links if link.prefix})
    phones = _phones(links)
    if (by_phones and phones <= CHAIN_MAX_SOURCES) or (networks <= CHAIN_MAX_SOURCES and long):
        return networks, phones
    return None


def _quick(join: Join) -> bool:
    return join.clicked is not None and 0 <= join.ts - join.clicked <= PAIR_QUICK


def _soon(parent: Join, join: Join) -> bool:
    return join.clicked is not None and 0 <= join.clicked - parent.ts <= SESSION


def _same_agent(parent: Join, join: Join) -> bool:
    """Whether ``join`` came from the address and agent its parent joined from, soon after (any
    phone: an iPhone without cookies too)."""
    return (
        bool(parent.session_id())
        and parent.session_id() == join.session_id()
        and _soon(parent, join)
    )


def _other_app(parent: Join, join: Join) -> bool:
    """Whether ``join`` came from another app or the system browser of the Android phone its
    parent joined from, soon after: the same address, model and build. Two WeChat installs of
    one model are two people's phones (a family buys one brand), and the same agent is the
    phone's own ids' case."""
    return (
        bool(parent.hardware)
        and parent.hardware == join.hardware
        and not (parent.install and join.install)
        and parent.agent != join.agent
        and _soon(parent, join)
    )


def _practised(joins: list[Join]) -> bool:
    """Whether sign-ups came each about as long after their click as the others: a script's or a
    practised worker's pace. People read the page, fetch a code, get distracted: their delays
    spread widely (coefficient of variation near 1); accounts made in a row do not."""
    delays = [j.ts - j.clicked for j in joins if j.clicked is not None]
    return len(delays) >= PRACTISED_MIN and _cv(delays) < PRACTISED_CV


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _cv(values: list[float]) -> float:
    mean = sum(values) / len(values)
    if mean <= 0:
        return 0.0
    return float(math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / mean)
