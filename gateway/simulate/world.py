"""The event loop: a clock-ordered queue of actions, and the only place events are emitted.

Every actor (honest sharers and their friends, every attack) schedules actions at future times;
the loop runs them in time order, so events leave in ``ts`` order and are streamed to disk as they
happen: memory holds the pending actions and the accounts, never the log. Ids (``c<n>``,
``x<n>``, ``u<n>``) are numbered in emission order and carry no label information.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from gateway.simulate.clock import HOUR
from gateway.simulate.output import Sink
from gateway.simulate.people import Person

Action = Callable[[float], None]
ORGANIC = "organic"
KINDS = (
    ORGANIC,
    "click_farm",
    "datacenter_bot",
    "self_referral",
    "sybil_chain",
    "click_spam",
    "scraped_link",
    "ring",
    "star_burst",
)


@dataclass(frozen=True, slots=True)
class Label:
    fraud: bool
    kind: str
    actor: str
    variant: str = ""


@dataclass(slots=True, eq=False)
class Referrer:
    """A sharer's link in one campaign, and whether the sharer runs or benefits from an attack."""

    campaign: str
    user: str
    seed: bool
    joined: float | None
    fraud: bool = False
    kind: str = ORGANIC
    clicks: int = 0


@dataclass(slots=True, eq=False)
class Sharer:
    person: Person
    campaign: Campaign
    referrer: Referrer

    @property
    def user(self) -> str:
        return self.referrer.user


@dataclass(slots=True, eq=False)
class Campaign:
    index: int
    slug: str
    start: float
    end: float
    seeds: int
    joined: set[str] = field(default_factory=set)
    #: Honest sharers so far, in the order they started sharing (attacks pick victims here).
    sharers: list[Sharer] = field(default_factory=list)
    clicks: int = 0
    conversions: int = 0
    fraud_clicks: int = 0
    fraud_conversions: int = 0


class World:
    def __init__(self, sink: Sink, origin: float, hours: int) -> None:
        self.sink = sink
        self.origin = origin
        self.now = origin
        self._heap: list[tuple[float, int, Action]] = []
        self._seq = 0
        self.users = 0
        self.clicks = 0
        self.conversions = 0
        self.referrers: dict[tuple[str, str], Referrer] = {}
        self.kind_counts: dict[str, list[int]] = {kind: [0, 0] for kind in KINDS}
        #: The crowd's clicks (honest, not an influencer's audience) of the main campaign per hour
        #: since the origin: the festival peak is measured on these.
        self.hourly = [0] * hours
        self.first_ts: float | None = None
        self.last_ts = origin
        self.progress: Callable[[float, int], None] | None = None

    # Scheduling -------------------------------------------------------------------------

    def at(self, ts: float, action: Action) -> None:
        if ts < self.now:
            raise ValueError(f"action scheduled in the past: {ts} < {self.now}")
        self._seq += 1
        heapq.heappush(self._heap, (ts, self._seq, action))

    def run(self) -> None:
        heap = self._heap
        pop = heapq.heappop
        report = self.progress
        step = 0
        while heap:
            ts, _, action = pop(heap)
            self.now = ts
            action(ts)
            step += 1
            if report is not None and step & 0x3FFF == 0:
                report(ts, self.clicks + self.conversions)

    # Accounts ---------------------------------------------------------------------------

    def new_user(self) -> str:
        self.users += 1
        return f"u{self.users}"

    def referrer(self, campaign: Campaign, user: str, seed: bool, joined: float | None) -> Referrer:
        key = (campaign.slug, user)
        found = self.referrers.get(key)
        if found is None:
            found = self.referrers[key] = Referrer(campaign.slug, user, seed, joined)
        return found

    @staticmethod
    def mark(referrer: Referrer, kind: str) -> None:
        """The sharer runs or knowingly benefits from an attack of ``kind`` (first kind wins)."""
        if not referrer.fraud:
            referrer.fraud = True
            referrer.kind = kind

    # Events -----------------------------------------------------------------------------

    def click(
        self,
        ts: float,
        campaign: Campaign,
        referrer: Referrer,
        ip: str,
        ua: str,
        headers: dict[str, str],
        visitor: str | None,
        label: Label,
    ) -> str | None:
        """Emit a click now; None (and nothing emitted) once the campaign has ended."""
        if ts >= campaign.end or ts < campaign.start:
            return None
        self.clicks += 1
        click_id = f"c{self.clicks}"
        referrer.clicks += 1
        campaign.clicks += 1
        if label.fraud:
            campaign.fraud_clicks += 1
        self._count(ts, label, 0)
        if not label.fraud and campaign.index == 0 and label.variant != "viral":
            self.hourly[int((ts - self.origin) // HOUR)] += 1
        self.sink.write(
            orjson.dumps(
                {
                    "type": "click",
                    "id": click_id,
                    "ts": round(ts, 3),
                    "campaign": campaign.slug,
                    "referrer": referrer.user,
                    "ip": ip,
                    "ua": ua,
                    "headers": headers,
                    "visitor_id": visitor,
                },
                option=orjson.OPT_APPEND_NEWLINE,
            ),
            self._label(click_id, "click", label),
        )
        return click_id

    def convert(
        self, ts: float, campaign: Campaign, click_id: str, user: str | None, label: Label
    ) -> str | None:
        """Emit a conversion of ``click_id`` by ``user`` (a new account when None); None when the
        campaign has ended or the user already joined it."""
        if ts >= campaign.end or (user is not None and user in campaign.joined):
            return None
        if user is None:
            user = self.new_user()
        campaign.joined.add(user)
        self.conversions += 1
        conversion_id = f"x{self.conversions}"
        campaign.conversions += 1
        if label.fraud:
            campaign.fraud_conversions += 1
        self._count(ts, label, 1)
        self.sink.write(
            orjson.dumps(
                {
                    "type": "conversion",
                    "id": conversion_id,
                    "ts": round(ts, 3),
                    "campaign": campaign.slug,
                    "click_id": click_id,
                    "user": user,
                },
                option=orjson.OPT_APPEND_NEWLINE,
            ),
            self._label(conversion_id, "conversion", label),
        )
        return user

    def _count(self, ts: float, label: Label, column: int) -> None:
        self.kind_counts[label.kind][column] += 1
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts

    @staticmethod
    def _label(event_id: str, kind: str, label: Label) -> bytes:
        return orjson.dumps(
            {
                "id": event_id,
                "type": kind,
                "fraud": label.fraud,
                "kind": label.kind,
                "actor": label.actor,
                "variant": label.variant,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
