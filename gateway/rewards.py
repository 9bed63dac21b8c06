"""The reward ledger's reading side, and what reviews do to rewards.

Rewards are decided when a conversion arrives (``convert.lua``). Afterwards they move only
through ``settle_reward.lua``, each move a ledger entry: a flag raised on a subject holds the
rewards it touches; a ``legit`` review releases them; a ``fraud`` review claws back what was
credited and denies what was held; a ``legit`` review that corrects a ``fraud`` one pays back,
within the budget, what the fraud decision took.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

from gateway import cursors
from gateway.campaigns import Campaign, CampaignService
from gateway.errors import ApiError
from gateway.flags import Flag, stake_flag_ids
from gateway.store import keys
from gateway.store.scripts import execute_with_scripts, script

STATUSES = keys.REWARD_STATUSES
#: Rewards a batch of the by-status migration moves in one script run.
_BATCH = 500


@dataclass(frozen=True)
class RewardPage:
    rows: list[dict[str, Any]]
    #: Rewards matching the filters, every page.
    total: int
    #: Where the next page starts (None: this is the last).
    next_cursor: str | None


class RewardService:
    def __init__(self, store: Any, campaigns: CampaignService | None = None) -> None:
        self._redis = store
        #: Where a restore reads the budget and the cap (reviews only; None: nothing restored).
        self._campaigns = campaigns

    # -- reading -------------------------------------------------------------------------------

    def budget(self, campaign: Campaign) -> dict[str, Any]:
        raw = self._redis.hgetall(keys.campaign_keys(campaign.id).budget)
        spent = int(raw.get(b"spent", 0))
        held = int(raw.get(b"held", 0))
        total = campaign.reward.budget_total if campaign.reward else 0
        left = max(total - spent - held, 0)
        amount = campaign.reward.amount if campaign.reward else 0
        return {
            "total": total,
            "spent": spent,
            "held": held,
            "left": left,
            "exhausted": campaign.reward is not None and left < amount,
        }

    def get(self, campaign_id: int, user: str) -> dict[str, Any] | None:
        raw = self._redis.hgetall(keys.campaign_keys(campaign_id).reward(user))
        return _public(raw) if raw else None

    def find(
        self,
        campaign: Campaign,
        *,
        referrer: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
        cursor: str | None = None,
    ) -> RewardPage:
        """A page of the campaign's rewards, newest first (ties by participant, descending).

        With ``cursor`` (a page's ``next_cursor``) the page starts after the row the cursor
        names, by its time and participant: rewards arriving meanwhile are newer and come before
        it, so a client paging through never sees a row twice or misses one that was there
        when it started. ``offset`` counts rows and shifts as rewards arrive (kept for clients
        written before cursors). Either way the page reads only its own rows: a status filter
        reads the rewards-by-status index (built once for a campaign older than it)."""
        if status is not None and status not in STATUSES:
            raise ApiError(
                400,
                "validation_failed",
                "invalid filter",
                fields={"status": f"one of {', '.join(STATUSES)}"},
            )
        ck = keys.campaign_keys(campaign.id)
        scope = {"c": campaign.id, "r": referrer, "s": status}
        after = None
        if cursor is not None:
            position = cursors.decode(
                cursor,
                "rewards",
                scope,
                "a cursor of another listing: page with the campaign, referrer and status it "
                "was given for",
            )
            if len(position) != 2:
                raise cursors.malformed()
            after = (cursors.number(position[0]), cursors.text(position[1]))
        if status is None:
            index = ck.referrer_reward_index(referrer) if referrer else ck.rewards
        else:
            self.index_statuses(campaign.id)
            index = (
                ck.referrer_rewards_by_status(referrer, status)
                if referrer
                else ck.rewards_by_status(status)
            )
        window, total = cursors.zrevpage(
            self._redis, index, limit=limit, after=after, offset=offset, count=True
        )
        page = window[:limit]
        next_cursor = None
        if len(window) > limit and page:
            user, at = page[-1]
            next_cursor = cursors.encode("rewards", scope, [at, user])
        return RewardPage(self._rows(ck, [user for user, _ in page]), total or 0, next_cursor)

    def index_statuses(self, campaign_id: int, *, force: bool = False) -> int:
        """Put a campaign's rewards into the by-status indexes if they are not yet all there (a
        campaign from before the indexes; new ones are indexed from their creation), in batches,
        each atomic (index_reward_status.lua), then mark the campaign indexed; returns how many
        rewards were indexed. Until the mark is set no listing reads the indexes; two listings
        running it at once do the same work. ``force`` runs it on a marked campaign too
        (``refgate rewards reindex``: after workers still running an older convert.lua wrote
        rewards beside it, during an upgrade)."""
        ck = keys.campaign_keys(campaign_id)
        if not force and self._redis.hget(ck.counters, keys.REWARD_STATUS_INDEXED):
            return 0
        index = script("index_reward_status")
        indexed = 0
        start = 0
        while True:
            # By rank, oldest first: rewards arriving meanwhile are newer and join at the end
            # (convert.lua indexes them itself), so no rank moves under the loop.
            users = [u.decode() for u in self._redis.zrange(ck.rewards, start, start + _BATCH - 1)]
            if not users:
                break
            pipe = self._redis.pipeline(transaction=False)
            for user in users:
                pipe.hget(ck.reward(user), "referrer")
            batch_keys = [ck.rewards]
            for user, referrer in zip(users, pipe.execute(), strict=True):
                batch_keys.append(ck.reward(user))
                batch_keys += ck.reward_status_indexes((referrer or b"").decode())
            indexed += int(index(self._redis, batch_keys, users))
            start += len(users)
        self._redis.hset(ck.counters, keys.REWARD_STATUS_INDEXED, 1)
        return indexed

    def of_referrer(
        self, campaign_id: int, referrer: str, *, limit: int = 200
    ) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
        """A referrer's latest ``limit`` rewards (newest first), how many they have, and their
        totals hash (credited and held units, rewarded conversions): three reads by key,
        however many referrals the referrer has."""
        ck = keys.campaign_keys(campaign_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrevrange(ck.referrer_reward_index(referrer), 0, limit - 1)
        pipe.zcard(ck.referrer_reward_index(referrer))
        pipe.hgetall(ck.referrer_rewards(referrer))
        users, total, totals = pipe.execute()
        rows = self._rows(ck, [u.decode() for u in users]) if users else []
        return (
            rows,
            int(total),
            {k.decode(): int(v) for k, v in totals.items() if v.lstrip(b"-").isdigit()},
        )

    def referrer_totals(self, campaign_id: int, referrer: str) -> dict[str, dict[str, int]]:
        """How many of a referrer's rewards are in each status and their units, exact however
        many they have (the person page listed 200 and had summed those): the counts are the
        sizes of their by-status indexes, the units their totals hash, where convert.lua and
        settle_reward.lua keep credited, held, denied and clawed_back units as they move them.
        A referrer from before the last two were kept is counted once (referrer_units.lua)."""
        self.index_statuses(campaign_id)
        ck = keys.campaign_keys(campaign_id)
        pipe = self._redis.pipeline(transaction=False)
        for status in STATUSES:
            pipe.zcard(ck.referrer_rewards_by_status(referrer, status))
        pipe.hgetall(ck.referrer_rewards(referrer))
        *counts, raw = pipe.execute()
        n = dict(zip(STATUSES, (int(c) for c in counts), strict=True))
        if b"units_kept" not in raw and n["denied"] + n["clawed_back"]:
            raw = self._count_units(ck, referrer)
        return {
            status: {
                "n": n[status],
                # Denied and clawed_back units of a referrer with none of those are 0, whatever
                # settle_reward.lua moved there and back before they were counted.
                "units": int(raw.get(status.encode(), 0)) if n[status] else 0,
            }
            for status in STATUSES
        }

    def _count_units(self, ck: keys.CampaignKeys, referrer: str) -> dict[bytes, bytes]:
        """Sum a referrer's denied and clawed_back units once into their totals hash; read
        again while a review moves their rewards under it (a few times at most)."""
        count = script("referrer_units")
        indexes = [ck.referrer_rewards_by_status(referrer, s) for s in ("denied", "clawed_back")]
        for _ in range(10):
            users = [u.decode() for index in indexes for u in self._redis.zrange(index, 0, -1)]
            reward_keys = [ck.reward(u) for u in users]
            if count(self._redis, [ck.referrer_rewards(referrer), *indexes, *reward_keys], users):
                break
        return dict(self._redis.hgetall(ck.referrer_rewards(referrer)))

    def replay_rows(self, campaign_ids: list[int]) -> list[dict[str, Any]]:
        """Every reward, oldest first, as replay writes them (rewards.jsonl)."""
        out = []
        for campaign_id in campaign_ids:
            ck = keys.campaign_keys(campaign_id)
            document = self._redis.hget(ck.config, "json")
            users = [u.decode() for u in self._redis.zrange(ck.rewards, 0, -1)]
            name = json.loads(document)["slug"] if document else str(campaign_id)
            for row in self._rows(ck, users):
                out.append(
                    {
                        "campaign": name,
                        "referrer": row["referrer"],
                        "user": row["user"],
                        "click_id": row["click_id"],
                        "status": row["status"],
                        "amount": row["amount"],
                        "reason": row["reason"],
                    }
                )
        return out

    def _rows(self, ck: keys.CampaignKeys, users: list[str]) -> list[dict[str, Any]]:
        pipe = self._redis.pipeline(transaction=False)
        for user in users:
            pipe.hgetall(ck.reward(user))
        return [_public(raw) for raw in pipe.execute() if raw]

    # -- what flags and reviews do -------------------------------------------------------------

    def on_flag_raised(self, campaign_id: int, flag: Flag, before: Flag | None = None) -> int:
        """Hold the credited rewards a flag touches; returns how many moved.

        Raised again (more evidence), a flag holds nothing more: what it touched was held when
        it was first raised, and later conversions under a flagged referrer or on a flagged
        click are held by convert.lua itself. A cluster's new members bring their rewards with
        them and are held now; its members' later conversions are not held for the cluster
        alone (a household's shared browser or a busy network is weak evidence: the members of
        a chain, ring or burst are under review through gateway.referrer_risk, and their
        conversions are held that way). A campaign from before the amount-at-stake index keeps
        the old rule: every raise settles every member.
        """
        if before is None or before.status != "open":
            return self._settle(campaign_id, flag, "hold", "flagged")
        if flag.kind != "cluster":
            return 0
        ck = keys.campaign_keys(campaign_id)
        if not self._redis.hget(ck.counters, keys.STAKE_INDEXED):
            return self._settle(campaign_id, flag, "hold", "flagged")
        joined = sorted(set(flag.members) - set(before.members))
        if not joined:
            return 0
        return self._settle(campaign_id, replace(flag, members=joined), "hold", "flagged")

    def on_decision(self, campaign_id: int, flag: Flag, decision: str) -> int:
        """Release (legit) or claw back and deny (fraud) the rewards a decided flag touches.

        A ``legit`` decision that corrects the flag's earlier ``fraud`` decision also pays back
        what that decision took (``_restore``): otherwise the flag would say legit while its
        rewards stayed denied."""
        if decision == "legit":
            restored = self._restore(campaign_id, flag)
            return restored + self._settle(campaign_id, flag, "release", "reviewed_legit")
        return self._settle(campaign_id, flag, "fraud", "reviewed_fraud")

    def _other_flags(
        self, campaign_id: int, flag: Flag, rewards: list[tuple[str, str, str]]
    ) -> list[set[bytes]]:
        """For each (participant, referrer, click): the statuses of the other flags about that
        reward (its participant's, referrer's and click's, and the clusters of either person),
        as far as they were raised. A reward stays held while any of them is open, and denied
        while any of them is decided fraud: one flag's decision speaks for that flag only."""
        if not rewards:
            return []
        ck = keys.campaign_keys(campaign_id)
        pipe = self._redis.pipeline(transaction=False)
        for user, referrer, _click in rewards:
            pipe.hmget(ck.cluster_index, user, referrer)
        others: list[list[str]] = []
        for (user, referrer, click), clusters in zip(rewards, pipe.execute(), strict=True):
            ids = stake_flag_ids(campaign_id, user, referrer, click)
            ids += [i for raw in clusters if raw for i in raw.decode().split(",")]
            others.append([i for i in dict.fromkeys(ids) if i and i != flag.id])
        pipe = self._redis.pipeline(transaction=False)
        for ids in others:
            for flag_id in ids:
                pipe.hget(ck.flag(flag_id), "status")
        statuses = iter(pipe.execute())
        found: list[set[bytes]] = []
        for ids in others:
            found.append({status for status in (next(statuses) for _ in ids) if status})
        return found

    def affected(self, campaign_id: int, flag: Flag) -> list[str]:
        """The participants whose conversion rewards a flag is about."""
        ck = keys.campaign_keys(campaign_id)
        if flag.kind == "referrer":
            return [
                u.decode()
                for u in self._redis.zrange(ck.referrer_reward_index(flag.subject), 0, -1)
            ]
        if flag.kind == "participant":
            return [flag.subject]
        if flag.kind == "cluster":
            # One pipelined read for every member: clusters are raised again at every detector
            # run as they grow, and a read per member made replays crawl.
            users = set(flag.members)
            pipe = self._redis.pipeline(transaction=False)
            for member in flag.members:
                pipe.zrange(ck.referrer_reward_index(member), 0, -1)
            for found in pipe.execute() if flag.members else []:
                users.update(u.decode() for u in found)
            return sorted(users)
        # A click: the conversions made on it (recorded by convert.lua), or for conversions older
        # than that record, found among its referrer's rewards.
        converted = self._redis.hget(ck.click_conversions, flag.subject)
        if converted:
            return list(dict.fromkeys(converted.decode().split(",")))
        referrer = flag.evidence.get("referrer")
        if not referrer:
            return []
        candidates = [
            u.decode() for u in self._redis.zrange(ck.referrer_reward_index(referrer), 0, -1)
        ]
        return [
            u
            for u, row in zip(candidates, self._rows(ck, candidates), strict=False)
            if row["click_id"] == flag.subject
        ]

    def _settle(self, campaign_id: int, flag: Flag, action: str, reason: str) -> int:
        """Move every reward the flag touches that ``action`` applies to.

        Flags are raised again and again as evidence grows (every detector run), so most calls
        move nothing: one pipelined read picks the rewards in a movable state, and one pipeline
        moves them. The script checks the state again, atomically; the read only saves work.
        """
        ck = keys.campaign_keys(campaign_id)
        users = self.affected(campaign_id, flag)
        if not users:
            return 0
        pipe = self._redis.pipeline(transaction=False)
        for user in users:
            pipe.hmget(ck.reward(user), "referrer", "status", "click")
        movable = _MOVABLE[action]
        chosen = [
            (user, referrer.decode(), (click or b"").decode())
            for user, (referrer, status, click) in zip(users, pipe.execute(), strict=True)
            if referrer is not None and status is not None and status.decode() in movable
        ]
        if action == "release":
            chosen = [
                reward
                for reward, statuses in zip(
                    chosen, self._other_flags(campaign_id, flag, chosen), strict=True
                )
                if not statuses & {b"open", b"fraud"}
            ]
        return self._move(campaign_id, flag, chosen, action, reason)

    def _restore(self, campaign_id: int, flag: Flag) -> int:
        """Credit again the rewards this flag's fraud decision denied or clawed back, unless
        another fraud decision is about them too (and hold them again while another flag about
        them is open), within the budget and the referrer's cap (settle_reward.lua checks both
        atomically; what has no room stays denied). Rewards settled before the ledger kept who
        settled them are left as they are."""
        campaign = self._campaigns.get_by_id(campaign_id) if self._campaigns else None
        if campaign is None or campaign.reward is None:
            return 0
        ck = keys.campaign_keys(campaign_id)
        users = self.affected(campaign_id, flag)
        pipe = self._redis.pipeline(transaction=False)
        for user in users:
            pipe.hmget(ck.reward(user), "referrer", "status", "click", "reason", "settled_by")
        taken = [
            (user, referrer.decode(), (click or b"").decode())
            for user, (referrer, status, click, reason, settled_by) in zip(
                users, pipe.execute() if users else [], strict=True
            )
            if referrer is not None
            and status in (b"denied", b"clawed_back")
            and reason == b"reviewed_fraud"
            and settled_by == flag.id.encode()
        ]
        if not taken:
            return 0
        # Another flag decided fraud keeps a reward denied; another one still open gets it back
        # as held, for that flag's review to settle.
        credited: list[tuple[str, str, str]] = []
        held: list[tuple[str, str, str]] = []
        for reward, statuses in zip(
            taken, self._other_flags(campaign_id, flag, taken), strict=True
        ):
            if b"fraud" in statuses:
                continue
            (held if b"open" in statuses else credited).append(reward)
        cap = campaign.reward.max_per_referrer or 0
        limits = (str(campaign.reward.budget_total), str(cap))
        return self._move(
            campaign_id, flag, credited, "restore", "reviewed_legit", limits
        ) + self._move(campaign_id, flag, held, "restore_held", "reviewed_legit", limits)

    def _move(
        self,
        campaign_id: int,
        flag: Flag,
        chosen: list[tuple[str, str, str]],
        action: str,
        reason: str,
        limits: tuple[str, str] = ("0", "0"),
    ) -> int:
        """Run settle_reward.lua on each chosen (participant, referrer, click); returns how many
        rewards moved."""
        if not chosen:
            return 0
        ck = keys.campaign_keys(campaign_id)
        now = repr(time.time())
        settle = script("settle_reward")

        def build(batch: Any) -> None:
            for user, referrer, click in chosen:
                settle.queue(
                    batch,
                    [
                        ck.reward(user),
                        ck.budget,
                        ck.referrer_rewards(referrer),
                        ck.ledger,
                        ck.top_sharers,
                        ck.outbox,
                        ck.flags_stake,
                        ck.flags_stake_open,
                        ck.cluster_index,
                        ck.rewards,
                        *ck.reward_status_indexes(referrer),
                    ],
                    [
                        action,
                        reason,
                        now,
                        flag.id,
                        *stake_flag_ids(campaign_id, user, referrer, click),
                        *limits,
                    ],
                )

        # Idempotent on a rerun after NOSCRIPT: a reward already moved is in no movable state.
        results = execute_with_scripts(self._redis, build, [settle])
        return sum(_decoded(result) in STATUSES for result in results)

    def ledger(self, campaign_id: int) -> list[dict[str, Any]]:
        entries = self._redis.xrange(keys.campaign_keys(campaign_id).ledger)
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


#: The states each settle action moves a reward out of (settle_reward.lua decides, atomically).
_MOVABLE = {
    "hold": frozenset({"credited"}),
    "release": frozenset({"held"}),
    "fraud": frozenset({"credited", "held"}),
}


def _decoded(result: Any) -> str:
    return result.decode() if isinstance(result, bytes) else str(result)


def _public(raw: dict[bytes, bytes]) -> dict[str, Any]:
    data = {k.decode(): v.decode() for k, v in raw.items()}
    return {
        "user": data.get("user", ""),
        "referrer": data.get("referrer", ""),
        "click_id": data.get("click", ""),
        "status": data.get("status", ""),
        "reason": data.get("reason", ""),
        "amount": int(data.get("amount", 0)),
        "ts": float(data.get("ts", 0)),
        "settled_at": float(data["settled_at"]) if data.get("settled_at") else None,
    }
