"""Conversions: a click's visitor joins the campaign, under the sharer, and the sharer may earn.

The landing application reports ``click_id`` (the ``rg_click`` it received) and the new
participant's ``user`` id. Everything that must be exactly once and within budget happens in one
Lua script (``convert.lua``): the join (first touch wins), the O(depth) subtree counts, the
reward against budget and caps, the ledger entry and the webhook events. This module prepares
what the script needs: the click's record, whether the click may earn credit, and the keys of
the parent's ancestors (a parent's path never changes once set, and the script checks it).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from detectors.conversion import conversion_time_signal
from detectors.review import only_under_review
from gateway.campaigns import PERSON_WORDS, Campaign, CampaignService
from gateway.clickcall import device_key
from gateway.errors import ApiError
from gateway.flags import flag_id_for, stake_flag_ids
from gateway.sharelinks import REFERRER_PATTERN, referrer_number
from gateway.store import keys
from gateway.store.scripts import script

USER_PATTERN = REFERRER_PATTERN.pattern
#: A click id as the click path makes it: the campaign's id in hex, a dot, 16 random characters.
CLICK_ID_PATTERN = r"^[0-9a-f]{1,8}\.[A-Za-z0-9_-]{16}$"
_CLICK_ID = re.compile(CLICK_ID_PATTERN)
#: Refusals and the HTTP status each gets.
REFUSALS = {
    "self_referral": (422, "a user cannot convert on their own link"),
    "cycle": (422, "the user is an ancestor of the sharer: joining would make a cycle"),
    "already_participant": (409, "the user is already a sharer in this campaign"),
    "idempotency_key_reused": (422, "this idempotency_key was used for another user's join"),
}
#: The field a refusal is about (the user, unless named here).
_REFUSED_FIELD = {"idempotency_key_reused": "idempotency_key"}


class ConversionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    click_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="The `rg_click` query parameter the landing page was opened with",
            json_schema_extra={"pattern": CLICK_ID_PATTERN, "examples": ["1.F3ABNl1F5Dh2Qzm4"]},
        ),
    ]
    user: Annotated[str, Field(pattern=USER_PATTERN)]
    idempotency_key: Annotated[str | None, Field(min_length=1, max_length=128)] = None

    @field_validator("click_id")
    @classmethod
    def _click_id_shape(cls, click_id: str) -> str:
        # A value no click can have (the whole landing URL, a space or newline read along, a
        # truncated id) is the sender's mistake: a 400 saying so, not the 404 unknown_click
        # that tells them to retry a click that may not be recorded yet.
        if not _CLICK_ID.fullmatch(click_id):  # fullmatch: "$" lets a final newline by
            raise ValueError(
                "not a click id: send the rg_click parameter of the landing page's URL as it "
                "came, such as 1.F3ABNl1F5Dh2Qzm4"
            )
        return click_id


@dataclass(frozen=True)
class ConversionOutcome:
    new: bool
    answer: dict[str, Any]
    campaign: str

    def replay_row(self) -> dict[str, Any]:
        reward = self.answer["reward"]
        return {
            "campaign": self.campaign,
            "referrer": self.answer["parent"],
            "user": self.answer["participant"],
            "click_id": self.answer["click_id"],
            "status": reward["status"],
            "amount": reward["amount"],
            "reason": reward["reason"],
        }


def creditable(event: dict[str, Any], now: float) -> str:
    """Whether the click may earn its sharer credit: 'credit', 'hold:<why>' or 'deny:<why>'."""
    if event.get("outcome") not in ("redirect", "fallback", "challenge"):
        return f"deny:click_{event.get('outcome', 'unknown')}"
    if event.get("decision") == "deny_credit" and only_under_review(event.get("reasons") or ()):
        # Denied for nothing but the sharer being under review: the review settles it (a legit
        # decision releases it, a fraud decision denies it).
        return "hold:referrer_under_review"
    if event.get("decision") in ("deny_credit", "block"):
        return "deny:click_denied"
    if not event.get("scored", True):
        return "hold:unscored_click"  # served during a store outage: never credited unreviewed
    if event.get("decision") == "challenge":
        return "hold:challenged_click"
    signal = conversion_time_signal(now - float(event["ts"]))
    if signal.kind == "automation":
        return "deny:conversion_before_click"
    if signal.value >= 0.8:
        return "hold:conversion_too_fast"
    return "credit"


class ConversionService:
    def __init__(self, store: Any, campaigns: CampaignService) -> None:
        self._redis = store
        self._campaigns = campaigns

    def convert(
        self,
        click_id: str,
        user: str,
        *,
        idempotency_key: str | None = None,
        now: float | None = None,
    ) -> ConversionOutcome:
        now = time.time() if now is None else now
        if not REFERRER_PATTERN.fullmatch(user):
            raise ApiError(
                400,
                "validation_failed",
                "invalid user",
                fields={"user": PERSON_WORDS},
            )
        campaign = self._campaign_of(click_id)
        ck = keys.campaign_keys(campaign.id)
        raw = self._redis.get(ck.click(click_id)) if _CLICK_ID.fullmatch(click_id) else None
        if raw is None:
            self._record_refusal(ck, "unknown_click", user, click_id, now)
            raise ApiError(
                404,
                "unknown_click",
                "no recorded click with this id in the attribution window "
                "(retry in a few seconds if the click was just made)",
                field="click_id",
            )
        event = orjson.loads(raw)
        referrer = self._redis.hget(ck.referrer_external, str(event["referrer_id"]))
        if referrer is None:
            self._record_refusal(ck, "unknown_referrer", user, click_id, now)
            raise ApiError(404, "unknown_click", "the click's sharer is unknown", field="click_id")
        referrer = referrer.decode()
        own_number, _ = referrer_number(self._redis, campaign.id, user)
        for _attempt in range(5):
            parent_path = (self._redis.hget(ck.participant(referrer), "path") or b"").decode()
            ancestors = [a for a in parent_path.split("/") if a]
            reward = campaign.reward
            new, answer_json = script("convert")(
                self._redis,
                [
                    ck.idempotency,
                    ck.participant(user),
                    ck.participant(referrer),
                    ck.children(referrer),
                    ck.budget,
                    ck.referrer_rewards(referrer),
                    ck.daily_spend,
                    ck.reward(user),
                    ck.rewards,
                    ck.referrer_reward_index(referrer),
                    ck.ledger,
                    ck.conversions,
                    ck.counters,
                    ck.flag(flag_id_for(campaign.id, "click", event["id"])),
                    ck.flag(flag_id_for(campaign.id, "referrer", referrer)),
                    ck.top_sharers,
                    ck.outbox,
                    ck.sharer_own(own_number),
                    ck.flags_stake,
                    ck.flags_stake_open,
                    ck.cluster_index,
                    ck.click_conversions,
                    *ck.reward_status_indexes(referrer),
                    *(ck.participant(a) for a in ancestors),
                ],
                [
                    user,
                    referrer,
                    parent_path,
                    event["id"],
                    idempotency_key or "",
                    repr(now),
                    reward.amount if reward else 0,
                    reward.budget_total if reward else 0,
                    (reward.max_per_referrer or 0) if reward else 0,
                    (reward.max_per_day or 0) if reward else 0,
                    int(now) // 86400,
                    creditable(event, now),
                    event.get("visitor_id") or "",
                    device_key(event.get("ip_hash", ""), event.get("ua", "")),
                    event.get("prefix", ""),
                    own_number,
                    *stake_flag_ids(campaign.id, user, referrer, event["id"]),
                ],
            )
            answer = json.loads(answer_json)
            if answer.get("error") != "retry":
                break
        else:  # pragma: no cover - a parent's path changes only once (from root to nothing)
            raise ApiError(409, "conflict", "the referral tree changed meanwhile; retry")
        error = answer.get("error")
        if error is not None:
            status, message = REFUSALS.get(error, (409, error))
            raise ApiError(status, error, message, field=_REFUSED_FIELD.get(error, "user"))
        return ConversionOutcome(bool(new), answer, campaign.slug)

    def _campaign_of(self, click_id: str) -> Campaign:
        prefix, sep, _ = click_id.partition(".")
        campaign = None
        if sep and prefix and all(c in "0123456789abcdef" for c in prefix) and len(prefix) <= 8:
            campaign = self._campaigns.get_by_id(int(prefix, 16))
        if campaign is None:
            raise ApiError(
                404, "unknown_click", "no campaign has a click with this id", field="click_id"
            )
        return campaign

    def _record_refusal(
        self, ck: keys.CampaignKeys, reason: str, user: str, click_id: str, now: float
    ) -> None:
        self._redis.hincrby(ck.counters, f"refused:{reason}", 1)
        self._redis.xadd(
            ck.conversions,
            {
                "status": "refused",
                "reason": reason,
                "user": user,
                "referrer": "",
                "click": click_id,
                "ts": repr(now),
            },
        )
