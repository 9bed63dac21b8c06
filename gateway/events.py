"""The click event: what one click was and what refgate decided, recorded exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import orjson


@dataclass(slots=True)
class ClickEvent:
    id: str
    ts: float
    campaign_id: int
    campaign: str
    referrer_id: int
    visitor_id: str | None
    ip_hash: str
    prefix: str
    ua: str
    accept_language: str
    referer: str
    scan: bool
    outcome: str  # redirect | fallback | challenge | blocked | expired | revoked | ended | paused
    decision: str  # allow | challenge | deny_credit | block
    score: float
    reasons: list[str] = field(default_factory=list)
    platform: str = "unknown"
    #: "datacenter", "vpn" or "": the click's network class (the raw IP is not kept).
    network: str = ""
    #: False when the click was served without the store (no history, so never credited).
    scored: bool = True
    #: True once the click path's velocity counters were updated for this click.
    counted: bool = True
    #: The model features scored (detectors.features.FEATURE_NAMES), so recorded traffic can be
    #: backtested and used for training; empty when the click was not scored.
    features: list[float] = field(default_factory=list)

    @property
    def creditable(self) -> bool:
        return self.scored and self.decision == "allow" and self.outcome in CREDITABLE_OUTCOMES

    def counter_fields(self) -> list[str]:
        fields = [f"outcome:{self.outcome}"]
        if self.outcome in COUNTED_OUTCOMES:
            fields += [
                "clicks",
                "clicks:scan" if self.scan else "clicks:link",
                f"decision:{self.decision}",
                f"platform:{self.platform}",
            ]
            if not self.scored:
                fields.append("clicks:unscored")
            if self.outcome == "fallback":
                fields.append(f"fallback:{self.platform}")
        return fields

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every value (70 us per event on the click path).
        data = {name: getattr(self, name) for name in FIELD_NAMES}
        data["reasons"] = list(self.reasons)
        data["features"] = list(self.features)
        return data

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, the fields in declaration order (orjson serialises the dataclass
        itself: no dict built first, on every click)."""
        return orjson.dumps(self)

    def record_json(self) -> bytes:
        """The click's record (``keys.CampaignKeys.click``), kept for the attribution window:
        only what a conversion and the tree watch read (RECORD_FIELDS). The whole event (model
        features, headers, network class) is in the event stream; a record holding it too took
        a third more memory and AOF a click."""
        return orjson.dumps({name: getattr(self, name) for name in RECORD_FIELDS})

    @classmethod
    def from_json(cls, raw: str | bytes) -> ClickEvent:
        return cls(**orjson.loads(raw))

    def public(self, referrer: str | None) -> dict[str, Any]:
        data = self.as_dict()
        data["referrer"] = referrer
        return data


FIELD_NAMES = tuple(f.name for f in fields(ClickEvent))
#: What a click's record keeps: the conversion (gateway.conversions: the referrer, whether the
#: click may earn credit, the joiner's browser, phone and network) and the tree watch
#: (gateway.trees: when and from which address and agent) read these and nothing else.
RECORD_FIELDS = (
    "id",
    "ts",
    "referrer_id",
    "visitor_id",
    "ip_hash",
    "prefix",
    "ua",
    "outcome",
    "decision",
    "reasons",
    "scored",
)


#: Outcomes that are clicks by a person on a valid link (counted in click totals).
COUNTED_OUTCOMES = frozenset({"redirect", "fallback", "challenge", "blocked"})
#: Outcomes after which the visitor reached the destination with the referrer eligible for credit.
CREDITABLE_OUTCOMES = frozenset({"redirect", "fallback", "challenge"})
