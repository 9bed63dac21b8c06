"""One person across every campaign: where an external id appears, read by key.

Support and the risk team are asked about a person, not a campaign ("my invitations earned
nothing"), and rings work across campaigns. A name is looked up in each campaign by the keys
that name it (its tree node, its links, the flags whose ids derive from it, its rewards), all in
one pipeline and one more for the links' state: never by reading a campaign's participants,
flags or rewards. Only the campaigns that numbered the name (keys.person_campaigns, kept where a
sharer or participant is first numbered) are read, not every campaign; until a store from before
that index is reindexed (:meth:`PeopleService.reindex`), every campaign is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from gateway.campaigns import Campaign, CampaignService
from gateway.flags import flag_id_for
from gateway.store import keys

log = logging.getLogger(__name__)

#: What is read per campaign, in this order (see :meth:`PeopleService.everywhere`).
_READS = 8


@dataclass(frozen=True, slots=True)
class Appearance:
    """What one campaign knows of a person. ``depth`` is None when they are not in its tree;
    ``links`` is ``active``, ``revoked`` or None (never minted)."""

    campaign: Campaign
    depth: int | None = None
    joined: float | None = None
    invited: int = 0
    links: str | None = None
    #: Their own flags' statuses by kind (``referrer``, ``participant``).
    flags: dict[str, str] = field(default_factory=dict)
    #: How many cluster flags list them as a member (campaigns indexed by member).
    clusters: int = 0
    #: Units credited and held for the people they invited, and how many were rewarded.
    credited: int = 0
    held: int = 0
    conversions: int = 0
    #: The status of their own reward for joining, if any.
    own_reward: str | None = None

    def public(self) -> dict[str, Any]:
        """As the API answers it (``GET /api/v1/people/<person>``)."""
        return {
            "campaign": self.campaign.slug,
            "depth": self.depth,
            "joined": self.joined,
            "invited": self.invited,
            "links": self.links,
            "flags": self.flags,
            "clusters": self.clusters,
            "rewards": {
                "credited": self.credited,
                "held": self.held,
                "conversions": self.conversions,
            },
            "own_reward": self.own_reward,
        }


class PeopleService:
    def __init__(self, store: Any, campaigns: CampaignService) -> None:
        self._redis = store
        self._campaigns = campaigns

    def everywhere(self, name: str, *, besides: int | None = None) -> list[Appearance]:
        """The campaigns (but ``besides``) where ``name`` is in the tree, has links, a flag
        about them, or a reward, oldest campaign first."""
        campaigns = [c for c in self._candidates(name) if c.id != besides]
        if not campaigns:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for campaign in campaigns:
            ck = keys.campaign_keys(campaign.id)
            pipe.hmget(ck.participant(name), "depth", "joined")
            pipe.zcard(ck.children(name))
            pipe.hget(ck.referrer_index, name)
            pipe.hget(ck.flag(flag_id_for(campaign.id, "referrer", name)), "status")
            pipe.hget(ck.flag(flag_id_for(campaign.id, "participant", name)), "status")
            pipe.hget(ck.cluster_index, name)
            pipe.hmget(ck.referrer_rewards(name), "credited", "held", "conversions")
            pipe.hget(ck.reward(name), "status")
        replies = pipe.execute()
        found: list[tuple[Campaign, list[Any]]] = []
        for n, campaign in enumerate(campaigns):
            row = replies[n * _READS : (n + 1) * _READS]
            node, _, number, as_referrer, as_participant, clusters, totals, own = row
            if (
                node[0] is None
                and number is None
                and as_referrer is None
                and as_participant is None
                and not clusters
                and not any(totals)
                and own is None
            ):
                continue
            found.append((campaign, row))
        # Whether their links are revoked: a second read, for the campaigns where they have some.
        pipe = self._redis.pipeline(transaction=False)
        with_links = [(c, row) for c, row in found if row[2] is not None]
        for campaign, row in with_links:
            pipe.hexists(keys.campaign_keys(campaign.id).referrer_revoked, row[2])
        revoked = dict(
            zip((c.id for c, _ in with_links), pipe.execute() if with_links else [], strict=True)
        )
        return [_appearance(campaign, row, revoked.get(campaign.id)) for campaign, row in found]

    def _candidates(self, name: str) -> list[Campaign]:
        """The campaigns that numbered ``name``, from the index, or every campaign while the
        store is not indexed yet."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.PEOPLE_INDEXED)
        pipe.smembers(keys.person_campaigns(name))
        indexed, ids = pipe.execute()
        if not indexed:
            return self._campaigns.list()
        return self._campaigns.of_ids(int(i) for i in ids)

    def index_if_needed(self, now: float = 0.0) -> int:
        """The periodic job's half of :meth:`reindex`: nothing (one read) on an indexed store;
        on a store from before the index, the reindex, so an upgrade needs no step of its own
        before lookups read only the campaigns that know a name. Returns the pairs added."""
        if self._redis.get(keys.PEOPLE_INDEXED):
            return 0
        added = self.reindex()
        log.info("people index built: %d (person, campaign) pairs", added)
        return added

    def reindex(self, chunk: int = 1000) -> int:
        """Add every campaign's sharers and participants to the people index (their numbers,
        then the tree's nodes: participants who joined before joins were numbered), then mark
        the store indexed; returns how many (person, campaign) pairs were new to it. Adding is
        idempotent, so it is safe to run again and while refgate serves (new people are added
        by their numbering meanwhile). An upgrade's one-off: it reads each campaign's numbers
        and walks the keyspace once for the tree's nodes (a walk per campaign would read a
        store of many campaigns over and over)."""
        campaign_ids = set(self._campaigns.iter_ids())
        added = 0
        pipe = self._redis.pipeline(transaction=False)

        def add(name: str, campaign_id: int) -> None:
            nonlocal added, pipe
            pipe.sadd(keys.person_campaigns(name), campaign_id)
            if len(pipe) >= chunk:
                added += sum(pipe.execute())
                pipe = self._redis.pipeline(transaction=False)

        for campaign_id in sorted(campaign_ids):
            index = keys.campaign_keys(campaign_id).referrer_index
            for name, _ in self._redis.hscan_iter(index, count=chunk):
                add(name.decode(), campaign_id)
        for key in self._redis.scan_iter(match=keys.PARTICIPANT_PATTERN, count=chunk):
            node = keys.participant_of(key.decode())
            if node is not None and node[0] in campaign_ids:
                add(node[1], node[0])
        added += sum(pipe.execute())
        self._redis.set(keys.PEOPLE_INDEXED, 1)
        return int(added)


def _appearance(campaign: Campaign, row: list[Any], revoked: bool | None) -> Appearance:
    node, invited, number, as_referrer, as_participant, clusters, totals, own = row
    depth, joined = node
    credited, held, conversions = (int(v) if v is not None else 0 for v in totals)
    flags = {
        kind: status.decode()
        for kind, status in (("referrer", as_referrer), ("participant", as_participant))
        if status is not None
    }
    return Appearance(
        campaign=campaign,
        depth=None if depth is None else int(depth),
        joined=None if joined is None else float(joined),
        invited=int(invited),
        links=None if number is None else ("revoked" if revoked else "active"),
        flags=flags,
        clusters=len([i for i in clusters.decode().split(",") if i]) if clusters else 0,
        credited=credited,
        held=held,
        conversions=conversions,
        own_reward=None if own is None else own.decode(),
    )
