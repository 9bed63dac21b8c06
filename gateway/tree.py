"""Reading the referral tree: nodes, subtrees page by page, ancestors, statistics.

Every read is bounded: a subtree request names its depth and the number of children per node,
children are paged with a cursor, and a response never holds more than MAX_NODES nodes, so a
campaign of a million participants answers as fast as one of a hundred.
"""

from __future__ import annotations

from typing import Any

from gateway.campaigns import Campaign
from gateway.errors import ApiError
from gateway.flags import flag_id_for
from gateway.stats import counter_values
from gateway.store import keys

MAX_NODES = 1000
MAX_DEPTH = 5
MAX_LIMIT = 200


class TreeService:
    def __init__(self, store: Any) -> None:
        self._redis = store

    def nodes(self, campaign: Campaign, users: list[str]) -> list[dict[str, Any] | None]:
        """Participants' nodes (None for unknown ones), in one round trip."""
        ck = keys.campaign_keys(campaign.id)
        pipe = self._redis.pipeline(transaction=False)
        for user in users:
            pipe.hgetall(ck.participant(user))
            pipe.zcard(ck.children(user))
            pipe.hget(ck.flag(flag_id_for(campaign.id, "participant", user)), "status")
            pipe.hget(ck.flag(flag_id_for(campaign.id, "referrer", user)), "status")
            pipe.hgetall(ck.referrer_rewards(user))
        replies = pipe.execute()
        out: list[dict[str, Any] | None] = []
        for i, user in enumerate(users):
            raw, children, as_participant, as_referrer, rewards = replies[i * 5 : i * 5 + 5]
            if not raw:
                out.append(None)
                continue
            data = {k.decode(): v.decode() for k, v in raw.items()}
            flags = {
                k: v.decode()
                for k, v in (("participant", as_participant), ("referrer", as_referrer))
                if v
            }
            out.append(
                {
                    "id": user,
                    "parent": data.get("parent") or None,
                    "depth": int(data.get("depth", 0)),
                    "joined": float(data.get("joined", 0)),
                    "subtree_size": int(data.get("size", 0)),
                    "subtree_height": int(data.get("height", 0)),
                    "children": children,
                    "flags": flags,
                    "rewards": {
                        "credited": int(rewards.get(b"credited", 0)),
                        "held": int(rewards.get(b"held", 0)),
                        "conversions": int(rewards.get(b"conversions", 0)),
                    },
                }
            )
        return out

    def node(self, campaign: Campaign, user: str) -> dict[str, Any]:
        found = self.nodes(campaign, [user])[0]
        if found is None:
            raise ApiError(404, "participant_not_found", f"{user!r} is not in this campaign's tree")
        return found

    def subtree(
        self, campaign: Campaign, user: str, *, depth: int = 1, limit: int = 50, cursor: int = 0
    ) -> dict[str, Any]:
        if not 1 <= depth <= MAX_DEPTH:
            raise ApiError(
                400, "validation_failed", "invalid query", fields={"depth": f"1-{MAX_DEPTH}"}
            )
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(
                400, "validation_failed", "invalid query", fields={"limit": f"1-{MAX_LIMIT}"}
            )
        if cursor < 0:
            raise ApiError(
                400, "validation_failed", "invalid query", fields={"cursor": "0 or more"}
            )
        root = self.node(campaign, user)
        budget = [MAX_NODES - 1]
        (root["children_page"],) = self._pages(
            campaign, [(user, cursor, root["children"])], depth, limit, budget
        )
        root["truncated"] = budget[0] <= 0
        return root

    def _pages(
        self,
        campaign: Campaign,
        parents: list[tuple[str, int, int]],
        depth: int,
        limit: int,
        budget: list[int],
    ) -> list[dict[str, Any]]:
        """One page of children for each of ``parents`` (id, cursor, number of children), and
        below them ``depth - 1`` more levels, a level at a time: one pipelined read of the
        children's ids and one of their nodes per level, however many parents (a node-by-node
        walk made a thousand-node subtree cost hundreds of round trips). ``budget`` is the
        number of nodes the response may still hold, spent in order: a parent's page first,
        then the pages below, parent by parent; a node left without budget gets no page."""
        ck = keys.campaign_keys(campaign.id)
        takes = []
        for _, cursor, total in parents:
            take = max(min(limit, budget[0], total - cursor), 0)
            budget[0] -= take
            takes.append(take)
        pipe = self._redis.pipeline(transaction=False)
        for (parent, cursor, _), take in zip(parents, takes, strict=True):
            if take:
                pipe.zrange(ck.children(parent), cursor, cursor + take - 1)
        found = iter(pipe.execute() if any(takes) else [])
        id_lists = [[c.decode() for c in next(found)] if take else [] for take in takes]
        every = iter(self.nodes(campaign, [i for ids in id_lists for i in ids]))
        pages: list[dict[str, Any]] = []
        levels: list[list[dict[str, Any]]] = []
        for (_, cursor, total), ids in zip(parents, id_lists, strict=True):
            nodes = [n for n in (next(every) for _ in ids) if n is not None]
            levels.append(nodes)
            following = cursor + len(ids)
            pages.append(
                {
                    "nodes": nodes,
                    "total": total,
                    "next_cursor": following if following < total else None,
                }
            )
        if depth > 1:
            below: list[dict[str, Any]] = []
            promised = 0  # what the pages of the nodes before will take
            for nodes in levels:
                for node in nodes:
                    if node["children"] and budget[0] > promised:
                        below.append(node)
                        promised += min(limit, node["children"])
            for node, page in zip(
                below,
                self._pages(
                    campaign, [(n["id"], 0, n["children"]) for n in below], depth - 1, limit, budget
                ),
                strict=True,
            ):
                node["children_page"] = page
        return pages

    def ancestors(self, campaign: Campaign, user: str) -> list[dict[str, Any]]:
        """The chain from the root down to the participant's parent."""
        path = self._redis.hget(keys.campaign_keys(campaign.id).participant(user), "path")
        if path is None:
            raise ApiError(404, "participant_not_found", f"{user!r} is not in this campaign's tree")
        chain = [a for a in path.decode().split("/") if a]
        return [n for n in self.nodes(campaign, chain) if n is not None]

    def stats(self, campaign: Campaign, top: int = 10) -> dict[str, Any]:
        ck = keys.campaign_keys(campaign.id)
        counters = counter_values(self._redis.hgetall(ck.counters))
        depths = {
            int(name.split(":", 1)[1]): value
            for name, value in counters.items()
            if name.startswith("depth:")
        }
        participants = counters.get("participants", 0)
        roots = counters.get("roots", 0)
        parents = counters.get("parents", 0)
        leaders = self._redis.zrevrange(ck.top_sharers, 0, top - 1, withscores=True)
        return {
            "participants": participants,
            "roots": roots,
            "conversions": counters.get("conversions", 0),
            "refused": {
                k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("refused:")
            },
            "max_depth": max(depths, default=0),
            "depth_distribution": {str(d): depths[d] for d in sorted(depths)},
            "branching": round((participants - roots) / parents, 3) if parents else 0.0,
            "top_sharers": [
                {"referrer": r.decode(), "verified": int(s)} for r, s in leaders if s > 0
            ],
        }
