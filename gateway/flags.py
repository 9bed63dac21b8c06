"""The risk team's review queue: flags on clicks, referrers, participants and clusters.

One open flag per subject (a detector finding more evidence updates it, it does not pile up
duplicates). A decision (``fraud`` or ``legit``, with a note) is kept with who and when, closes
the flag, and is appended to the campaign's decision log, which training reads as labels and the
reward ledger reads to release or claw back (see gateway.rewards).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import ApiError
from gateway.store import keys
from gateway.store.scripts import execute_with_scripts, hmget_many, script
from gateway.validation import LongNote

FlagKind = Literal["click", "referrer", "participant", "cluster"]
FLAG_KINDS: tuple[str, ...] = ("click", "referrer", "participant", "cluster")
STATUSES: tuple[str, ...] = ("open", "fraud", "legit")


class FlagDecision(BaseModel):
    """``POST /flags/<id>/decision``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    decision: Literal["fraud", "legit"]
    note: LongNote = ""
    expect: Literal["open", "fraud", "legit"] | None = Field(
        default=None,
        description="The flag's status as the decider saw it: if it is another now (decided "
        "meanwhile), nothing changes and the answer is 409 flag_decided_meanwhile.",
    )


@dataclass(frozen=True)
class FlagCandidate:
    """What a detector wants reviewed; ``subject`` is a click id, referrer or participant id,
    or a cluster's name; ``members`` lists a cluster's participants."""

    kind: str
    subject: str
    score: float
    reasons: tuple[str, ...]
    members: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)
    #: Which detector family found it ("clicks", "tree:chain"...): a flag keeps one finding per
    #: source, so a source updating its finding replaces only its own reasons.
    source: str = "clicks"


@dataclass(frozen=True)
class Flag:
    id: str
    campaign: str
    kind: str
    subject: str
    score: float
    reasons: list[str]
    members: list[str]
    evidence: dict[str, Any]
    status: str
    created_at: float
    updated_at: float
    decided_by: str = ""
    decided_at: float | None = None
    note: str = ""

    def public(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> Flag:
        data = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(
            id=data["id"],
            campaign=data["campaign"],
            kind=data["kind"],
            subject=data["subject"],
            score=float(data["score"]),
            reasons=json.loads(data["reasons"]),
            members=json.loads(data.get("members", "[]")),
            evidence=json.loads(data.get("evidence", "{}")),
            status=data["status"],
            created_at=float(data["created_at"]),
            updated_at=float(data["updated_at"]),
            decided_by=data.get("decided_by", ""),
            decided_at=float(data["decided_at"]) if data.get("decided_at") else None,
            note=data.get("note", ""),
        )


@dataclass(frozen=True)
class FlagSummary:
    """What a queue needs to filter and sort a flag by, without its reasons and evidence."""

    id: str
    campaign_id: int
    kind: str
    subject: str
    members: list[str]
    score: float
    status: str
    updated_at: float


#: The codes packed into the amount-at-stake index's scores (lua/_stake.lua), in code order.
_STAKE_STATUSES = ("open", "fraud", "legit")
_STAKE_KINDS = ("click", "referrer", "participant", "cluster")


@dataclass(frozen=True)
class StakeEntry:
    """A flag in the amount-at-stake index (``flags_stake``): its amount at stake (the reward
    units its decision would move), score, status and kind, packed in the sorted set's score."""

    flag_id: str
    campaign_id: int
    packed: float
    stake: int
    score: float
    status: str
    kind: str

    @classmethod
    def unpack(cls, flag_id: str, campaign_id: int, packed: float) -> StakeEntry:
        rest, kind = divmod(int(packed), 4)
        rest, status = divmod(rest, 3)
        stake, score = divmod(rest, 10001)
        return cls(
            flag_id,
            campaign_id,
            packed,
            stake,
            score / 10000,
            _STAKE_STATUSES[status],
            _STAKE_KINDS[kind],
        )


#: Called with (campaign id, flag, decision) after a decision is stored (the reward ledger).
DecisionListener = Callable[[int, Flag, str], object]
#: Called with (campaign id, flag, the flag as it was before or None) after a flag is raised
#: or updated while open.
RaiseListener = Callable[[int, Flag, "Flag | None"], object]


class FlagService:
    def __init__(self, store: Any) -> None:
        self._redis = store
        self.listeners: list[DecisionListener] = []
        self.raise_listeners: list[RaiseListener] = []

    # -- raising -------------------------------------------------------------------------------

    def raise_flag(
        self, campaign_id: int, slug: str, candidate: FlagCandidate, now: float
    ) -> tuple[Flag, bool]:
        """Open a flag for the subject, or update the open one; returns (flag, newly raised).
        A subject whose flag was decided is not raised again (the decision stands)."""
        if candidate.kind not in FLAG_KINDS:
            raise ValueError(f"unknown flag kind {candidate.kind!r}")
        ck = keys.campaign_keys(campaign_id)
        flag_id = flag_id_for(campaign_id, candidate.kind, candidate.subject)
        existing = self.get(flag_id)
        entry = {"score": candidate.score, "reasons": list(candidate.reasons)}
        if (
            existing is not None
            and _adds_nothing(existing, candidate, entry)
            and (candidate.kind != "cluster" or self.stake_indexed([campaign_id]))
        ):
            # Detectors raise the same finding at every run: nothing to write, nothing to hold
            # (what the flag touched was held when it was raised; see RewardService.
            # on_flag_raised). A campaign from before the amount-at-stake index settles its
            # clusters at every raise, as it always did.
            return existing, False
        sources: dict[str, Any] = dict(existing.evidence.get("sources", {})) if existing else {}
        sources[candidate.source] = entry
        score = max(entry["score"] for entry in sources.values())
        reasons = [reason for entry in sources.values() for reason in entry["reasons"]]
        members = sorted({*(existing.members if existing else ()), *candidate.members})
        evidence = {
            **(existing.evidence if existing else {}),
            **candidate.evidence,
            "sources": sources,
        }
        raised = {  # the 'flag.raised' webhook event's data
            "id": flag_id,
            "kind": candidate.kind,
            "subject": candidate.subject,
            "score": round(score, 4),
            "reasons": reasons,
            "members": members,
        }
        for _attempt in range(5):
            totals, rewards, converted = self._stake_sources(
                ck, candidate.kind, candidate.subject, members
            )
            new, status = script("raise_flag")(
                self._redis,
                [
                    ck.flag(flag_id),
                    ck.flags_all,
                    ck.flags_open,
                    ck.outbox,
                    ck.flags_stake,
                    ck.flags_stake_open,
                    ck.cluster_index,
                    ck.click_conversions,
                    *totals,
                    *rewards,
                ],
                [
                    flag_id,
                    slug,
                    candidate.kind,
                    candidate.subject,
                    repr(round(score, 4)),
                    json.dumps(reasons, ensure_ascii=False),
                    json.dumps(members),
                    json.dumps(evidence, ensure_ascii=False),
                    repr(now),
                    json.dumps(raised, ensure_ascii=False),
                    len(totals),
                    converted,
                ],
            )
            if status != b"retry":
                break
        else:  # pragma: no cover - a click converts a handful of times at most
            raise RuntimeError(f"the conversions of click {candidate.subject!r} kept changing")
        flag = self.get(flag_id)
        assert flag is not None
        if flag.status == "open":
            for listener in self.raise_listeners:
                listener(campaign_id, flag, existing)
        return flag, bool(new)

    # -- reading -------------------------------------------------------------------------------

    def get(self, flag_id: str) -> Flag | None:
        campaign_id = _campaign_of(flag_id)
        if campaign_id is None:
            return None
        raw = self._redis.hgetall(keys.campaign_keys(campaign_id).flag(flag_id))
        return Flag.from_hash(raw) if raw else None

    def find(
        self,
        campaign_ids: Iterable[int],
        *,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Flag], int]:
        """Flags sorted by score (highest first), open ones from the open index."""
        flags: list[Flag] = []
        for campaign_id in campaign_ids:
            ck = keys.campaign_keys(campaign_id)
            index = ck.flags_open if status == "open" else ck.flags_all
            ids = [i.decode() for i in self._redis.zrevrange(index, 0, -1)]
            pipe = self._redis.pipeline(transaction=False)
            for flag_id in ids:
                pipe.hgetall(ck.flag(flag_id))
            for raw in pipe.execute():
                if raw:
                    flag = Flag.from_hash(raw)
                    if (status is None or flag.status == status) and (
                        kind is None or flag.kind == kind
                    ):
                        flags.append(flag)
        flags.sort(key=lambda f: (f.score, f.id), reverse=True)  # as open_page (ZREVRANGE)
        return flags[offset : offset + limit], len(flags)

    def open_page(
        self, campaign_ids: Iterable[int], *, min_score: float = 0.0, limit: int, offset: int
    ) -> tuple[list[Flag], int]:
        """Open flags scoring at least ``min_score``, by score (highest first), one page: read
        from the open index (scored by score), so a page costs the same with 10 or 10,000 flags
        (``find`` reads every flag to filter by kind)."""
        candidates: list[tuple[float, str, int]] = []
        total = 0
        for campaign_id in campaign_ids:
            index = keys.campaign_keys(campaign_id).flags_open
            total += int(self._redis.zcount(index, min_score, "+inf"))
            top = self._redis.zrevrangebyscore(
                index, "+inf", min_score, start=0, num=offset + limit, withscores=True
            )
            candidates += [(score, flag_id.decode(), campaign_id) for flag_id, score in top]
        # ZREVRANGE's order (score, then flag id, both descending): each campaign's first
        # offset + limit are then exactly its part of the merged order, ties included.
        candidates.sort(reverse=True)
        shown = candidates[offset : offset + limit]
        pipe = self._redis.pipeline(transaction=False)
        for _, flag_id, campaign_id in shown:
            pipe.hgetall(keys.campaign_keys(campaign_id).flag(flag_id))
        return [Flag.from_hash(raw) for raw in pipe.execute() if raw], total

    def summaries(
        self,
        campaign_ids: Iterable[int],
        *,
        status: str | None = None,
        kind: str | None = None,
        min_score: float = 0.0,
    ) -> list[FlagSummary]:
        """Every matching flag's summary: a few fields per flag, one round trip per campaign,
        so queues sorted by something other than the score stay cheap with thousands of flags."""
        out: list[FlagSummary] = []
        fields = ("kind", "subject", "members", "score", "status", "updated_at")
        for campaign_id in campaign_ids:
            ck = keys.campaign_keys(campaign_id)
            index = ck.flags_open if status == "open" else ck.flags_all
            ids = [i.decode() for i in self._redis.zrange(index, 0, -1)]
            rows = hmget_many(self._redis, [ck.flag(flag_id) for flag_id in ids], fields)
            for flag_id, values in zip(ids, rows, strict=True):
                if values[0] is None:
                    continue
                kind_, subject, members, score, status_, updated = (
                    (v or b"").decode() for v in values
                )
                if (
                    (status is None or status_ == status)
                    and (kind is None or kind_ == kind)
                    and float(score) >= min_score
                ):
                    out.append(
                        FlagSummary(
                            flag_id,
                            campaign_id,
                            kind_,
                            subject,
                            json.loads(members) if members != "[]" else [],
                            float(score),
                            status_,
                            float(updated),
                        )
                    )
        return out

    # -- the amount-at-stake index --------------------------------------------------------------

    def _stake_sources(
        self, ck: keys.CampaignKeys, kind: str, subject: str, members: Sequence[str]
    ) -> tuple[list[str], list[str], str]:
        """What a flag's amount at stake is read from (lua/_stake.lua): referrers' reward totals
        hashes, reward hashes, and a click's conversions as read now (the script checks them)."""
        if kind == "referrer":
            return [ck.referrer_rewards(subject)], [], ""
        if kind == "participant":
            return [], [ck.reward(subject)], ""
        if kind == "cluster":
            return [ck.referrer_rewards(m) for m in members], [ck.reward(m) for m in members], ""
        converted = (self._redis.hget(ck.click_conversions, subject) or b"").decode()
        users = dict.fromkeys(u for u in converted.split(",") if u)
        return [], [ck.reward(u) for u in users], converted

    def stake_indexed(self, campaign_ids: Iterable[int]) -> bool:
        """Whether every flag of these campaigns is in the amount-at-stake index: campaigns
        created before it existed are not until ``refgate flags reindex`` ran."""
        return all(
            self._redis.hget(keys.campaign_keys(c).counters, keys.STAKE_INDEXED)
            for c in campaign_ids
        )

    def by_stake(
        self,
        campaign_ids: Iterable[int],
        *,
        status: str | None = None,
        kind: str | None = None,
        min_score: float = 0.0,
        limit: int,
        offset: int,
    ) -> tuple[list[Flag], int, dict[str, int]]:
        """Flags by amount at stake (then score), highest first, one page, from the amount-at-
        stake index: (flags, how many match, amount at stake of each shown).

        Open flags come from the open index, others from the index of every flag. Without a
        filter beyond that, a page reads ``offset + limit`` entries per campaign; with a kind,
        a minimum score or a decided status, each campaign's whole index (ids and scores only:
        the filters are packed in the scores), never the flags themselves but those shown."""
        filtered = kind is not None or min_score > 0 or status not in (None, "open")
        status_code = _STAKE_STATUSES.index(status) if status else -1
        kind_code = _STAKE_KINDS.index(kind) if kind else -1
        # (packed, flag id, campaign): unpacked only for the page shown, so a filter over a
        # campaign's ten thousand flags costs integer arithmetic, not objects.
        entries: list[tuple[float, str, int]] = []
        total = 0
        for campaign_id in campaign_ids:
            ck = keys.campaign_keys(campaign_id)
            index = ck.flags_stake_open if status == "open" else ck.flags_stake
            end = -1 if filtered else offset + limit - 1
            pipe = self._redis.pipeline(transaction=False)
            pipe.zcard(index)
            pipe.zrevrange(index, 0, end, withscores=True)
            count, top = pipe.execute()
            if filtered:
                top = [
                    (flag_id, packed)
                    for flag_id, packed in top
                    if (kind_code < 0 or int(packed) % 4 == kind_code)
                    and (status_code < 0 or int(packed) // 4 % 3 == status_code)
                    and int(packed) // 12 % 10001 / 10000 >= min_score
                ]
                count = len(top)
            total += int(count)
            entries += [(packed, flag_id.decode(), campaign_id) for flag_id, packed in top]
        entries.sort(reverse=True)  # ZREVRANGE's order: packed score, then flag id
        shown = [
            StakeEntry.unpack(i, c, packed) for packed, i, c in entries[offset : offset + limit]
        ]
        pipe = self._redis.pipeline(transaction=False)
        for entry in shown:
            pipe.hgetall(keys.campaign_keys(entry.campaign_id).flag(entry.flag_id))
        flags = [Flag.from_hash(raw) for raw in pipe.execute() if raw]
        return flags, total, {entry.flag_id: entry.stake for entry in shown}

    def stakes(self, flags: Sequence[Flag | FlagSummary]) -> dict[str, int]:
        """The amount at stake of each flag, from the index (one call per campaign); flags not
        in it (not reindexed yet) are left out."""
        by_campaign: dict[int, list[str]] = {}
        for flag in flags:
            campaign_id = _campaign_of(flag.id)
            if campaign_id is not None:
                by_campaign.setdefault(campaign_id, []).append(flag.id)
        out: dict[str, int] = {}
        for campaign_id, ids in by_campaign.items():
            packed = self._redis.zmscore(keys.campaign_keys(campaign_id).flags_stake, ids)
            for flag_id, value in zip(ids, packed, strict=True):
                if value is not None:
                    out[flag_id] = StakeEntry.unpack(flag_id, campaign_id, value).stake
        return out

    def reindex(self, campaign_id: int, chunk: int = 1000) -> int:
        """Build the campaign's amount-at-stake index from the ledger: the click conversions
        hash from every reward (conversions recorded before it existed), then every flag. Safe
        while the service runs (each flag is indexed atomically, as raising it would); marks
        the campaign indexed. Returns how many flags were indexed."""
        ck = keys.campaign_keys(campaign_id)
        converted: dict[str, list[str]] = {}
        total = int(self._redis.zcard(ck.rewards))
        for start in range(0, total, chunk * 5):
            users = [
                u.decode() for u in self._redis.zrange(ck.rewards, start, start + chunk * 5 - 1)
            ]
            rows = hmget_many(self._redis, [ck.reward(u) for u in users], ("click",))
            for user, (made_on,) in zip(users, rows, strict=True):
                if made_on:
                    converted.setdefault(made_on.decode(), []).append(user)
        # Conversions since the upgrade are recorded by convert.lua already: keep those.
        items = list(converted.items())
        for start in range(0, len(items), chunk):
            pipe = self._redis.pipeline(transaction=False)
            for click, users in items[start : start + chunk]:
                pipe.hsetnx(ck.click_conversions, click, ",".join(users))
            pipe.execute()
        ids = [i.decode() for i in self._redis.zrange(ck.flags_all, 0, -1)]
        for start in range(0, len(ids), chunk):
            pending = ids[start : start + chunk]
            for _attempt in range(5):
                pending = self._index_stakes(ck, pending)
                if not pending:
                    break
            else:  # pragma: no cover - a click converts a handful of times at most
                raise RuntimeError(f"the conversions of the clicks of {pending} kept changing")
        self._redis.hset(ck.counters, keys.STAKE_INDEXED, 1)
        return len(ids)

    def _index_stakes(self, ck: keys.CampaignKeys, ids: list[str]) -> list[str]:
        """Index these flags (flag_stake.lua); returns the ids to try again."""
        rows = hmget_many(self._redis, [ck.flag(i) for i in ids], ("kind", "subject", "members"))
        jobs = []
        for flag_id, (kind, subject, members) in zip(ids, rows, strict=True):
            if kind is None or subject is None:
                continue
            totals, rewards, converted = self._stake_sources(
                ck, kind.decode(), subject.decode(), json.loads(members or b"[]")
            )
            jobs.append((flag_id, totals, rewards, converted))
        stake = script("flag_stake")

        def build(pipe: Any) -> None:
            for flag_id, totals, rewards, converted in jobs:
                stake.queue(
                    pipe,
                    [
                        ck.flag(flag_id),
                        ck.flags_stake,
                        ck.flags_stake_open,
                        ck.cluster_index,
                        ck.click_conversions,
                        *totals,
                        *rewards,
                    ],
                    [len(totals), converted],
                )

        results = execute_with_scripts(self._redis, build, [stake])
        return [job[0] for job, result in zip(jobs, results, strict=True) if result == b"retry"]

    def status_of(self, campaign_id: int, kind: str, subject: str) -> str | None:
        """The status of the subject's flag (open, fraud, legit), None when it has none."""
        ck = keys.campaign_keys(campaign_id)
        status = self._redis.hget(ck.flag(flag_id_for(campaign_id, kind, subject)), "status")
        return status.decode() if status else None

    def about(
        self, campaign_id: int, person: str, joined_on: str = "", *, clusters: int = 100
    ) -> tuple[list[Flag], bool]:
        """The flags about one person, read by key: their referrer and participant flags, the
        flag of the click they joined through (``joined_on``), and the first ``clusters`` cluster
        flags the cluster index lists them in; and whether that index is complete for the
        campaign (only indexed campaigns' clusters are found without reading every flag)."""
        ck = keys.campaign_keys(campaign_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(ck.cluster_index, person)
        pipe.hget(ck.counters, keys.STAKE_INDEXED)
        listed, indexed = pipe.execute()
        ids = [
            flag_id_for(campaign_id, "referrer", person),
            flag_id_for(campaign_id, "participant", person),
            flag_id_for(campaign_id, "click", joined_on) if joined_on else "",
            *(listed.decode().split(",")[:clusters] if listed else ()),
        ]
        ids = [i for i in dict.fromkeys(ids) if i]
        pipe = self._redis.pipeline(transaction=False)
        for flag_id in ids:
            pipe.hgetall(ck.flag(flag_id))
        return [Flag.from_hash(raw) for raw in pipe.execute() if raw], bool(indexed)

    def open_at_stake(
        self, campaign_id: int, rewards: Sequence[dict[str, Any]]
    ) -> dict[str, list[tuple[str, str]]]:
        """For each reward (by its ``user``), the open flags it is at stake in, as (id, kind):
        the flags of its participant, its referrer and its click, and the clusters listing its
        participant or referrer; their decisions are what will release or deny it. Read by key,
        in two pipelines, however many flags the campaign has."""
        if not rewards:
            return {}
        ck = keys.campaign_keys(campaign_id)
        people = list(dict.fromkeys(p for r in rewards for p in (r["user"], r["referrer"]) if p))
        pipe = self._redis.pipeline(transaction=False)
        for person in people:
            pipe.hget(ck.cluster_index, person)
        clusters = {
            person: listed.decode().split(",") if listed else []
            for person, listed in zip(people, pipe.execute(), strict=True)
        }
        candidates = {
            r["user"]: [
                i
                for i in dict.fromkeys(
                    [
                        *stake_flag_ids(campaign_id, r["user"], r["referrer"], r["click_id"]),
                        *clusters.get(r["user"], ()),
                        *clusters.get(r["referrer"], ()),
                    ]
                )
                if i
            ]
            for r in rewards
        }
        ids = list(dict.fromkeys(i for found in candidates.values() for i in found))
        pipe = self._redis.pipeline(transaction=False)
        for flag_id in ids:
            pipe.hmget(ck.flag(flag_id), "status", "kind")
        open_kind = {
            flag_id: kind.decode()
            for flag_id, (status, kind) in zip(ids, pipe.execute(), strict=True)
            if status == b"open" and kind
        }
        return {
            user: [(i, open_kind[i]) for i in found if i in open_kind]
            for user, found in candidates.items()
        }

    # -- deciding ------------------------------------------------------------------------------

    def decide(
        self,
        flag_id: str,
        decision: str,
        note: str,
        actor: str,
        now: float | None = None,
        *,
        expect: str | None = None,
    ) -> Flag:
        """Record a decision and move the rewards it concerns. With ``expect`` (the status the
        decider saw), a flag decided otherwise meanwhile is left as it is: DecidedMeanwhile,
        checked in the same script that writes, so two reviewers deciding at once cannot both
        pass."""
        if decision not in ("fraud", "legit"):
            raise ApiError(
                400, "validation_failed", "invalid decision", fields={"decision": "fraud or legit"}
            )
        flag = self.get(flag_id)
        if flag is None:
            raise ApiError(404, "flag_not_found", f"no flag {flag_id!r}")
        campaign_id = _campaign_of(flag_id)
        assert campaign_id is not None
        ck = keys.campaign_keys(campaign_id)
        when = time.time() if now is None else now
        label = {
            "flag": flag.id,
            "kind": flag.kind,
            "subject": flag.subject,
            "members": flag.members,
            "decision": decision,
            "note": note,
            "decided_by": actor,
            "decided_at": when,
        }
        written = script("decide_flag")(
            self._redis,
            [ck.flag(flag_id), ck.flags_open, ck.decisions, ck.flags_stake, ck.flags_stake_open],
            [
                flag_id,
                decision,
                note,
                actor,
                repr(when),
                json.dumps(label, ensure_ascii=False),
                expect or "",
            ],
        )
        decided = self.get(flag_id)
        assert decided is not None
        if not int(written):
            raise DecidedMeanwhile(decided, expect)
        for listener in self.listeners:
            listener(campaign_id, decided, decision)
        return decided

    def decisions(self, campaign_id: int) -> list[dict[str, Any]]:
        """Every decision taken in the campaign, oldest first (labels for training)."""
        entries = self._redis.xrange(keys.campaign_keys(campaign_id).decisions)
        return [json.loads(fields[b"d"]) for _, fields in entries]


class DecidedMeanwhile(ApiError):
    """A decision refused because the flag was decided otherwise since its decider looked;
    ``flag`` is the flag as it now is."""

    def __init__(self, flag: Flag, expect: str | None = None) -> None:
        if flag.status == "open":
            # Flags are never reopened: an open flag expected decided is the sender's stale or
            # wrong expect, and "decided open by <nobody>" would tell them nothing.
            message = f"flag {flag.id} is open (not decided), not {expect}: nothing was changed"
        else:
            message = (
                f"flag {flag.id} was decided {flag.status} by {flag.decided_by} meanwhile: "
                "nothing was changed"
            )
        # ``expect`` is the field that did not hold; its entry says what the status is now.
        super().__init__(
            409, "flag_decided_meanwhile", message, fields={"expect": f"the flag is {flag.status}"}
        )
        self.flag = flag


def _adds_nothing(existing: Flag, candidate: FlagCandidate, entry: dict[str, Any]) -> bool:
    """Whether raising ``candidate`` again would leave ``existing`` as it is."""
    evidence = existing.evidence
    return (
        evidence.get("sources", {}).get(candidate.source) == entry
        and set(candidate.members) <= set(existing.members)
        and all(evidence.get(key) == value for key, value in candidate.evidence.items())
    )


def flag_id_for(campaign_id: int, kind: str, subject: str) -> str:
    """Flag ids derive from the subject: the same subject always has the same flag."""
    digest = hashlib.sha256(f"{kind}:{subject}".encode()).hexdigest()[:10]
    return f"{campaign_id:x}-{digest}"


def stake_flag_ids(campaign_id: int, participant: str, referrer: str, click: str) -> list[str]:
    """The ids of the flags a conversion's reward is at stake in, raised or not (the scripts
    moving rewards update those that are): the participant's, the referrer's, the click's."""
    return [
        flag_id_for(campaign_id, "participant", participant),
        flag_id_for(campaign_id, "referrer", referrer),
        flag_id_for(campaign_id, "click", click) if click else "",
    ]


def _campaign_of(flag_id: str) -> int | None:
    prefix, sep, rest = flag_id.partition("-")
    if not sep or len(rest) != 10 or any(c not in "0123456789abcdef" for c in rest):
        return None
    try:
        return int(prefix, 16)
    except ValueError:
        return None


def check_filters(status: str | None, kind: str | None) -> None:
    fields = {}
    if status is not None and status not in STATUSES:
        fields["status"] = f"one of {', '.join(STATUSES)}"
    if kind is not None and kind not in FLAG_KINDS:
        fields["kind"] = f"one of {', '.join(FLAG_KINDS)}"
    if fields:
        raise ApiError(400, "validation_failed", "invalid filter", fields=fields)


def members_of(flags: Sequence[Flag]) -> set[str]:
    return {member for flag in flags for member in flag.members}
