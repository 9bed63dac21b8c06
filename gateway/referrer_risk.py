"""Referrer risk: what off-path analysis and review concluded about a sharer, fed back to the
click path.

The flagger and the tree watch find referrers worth a reviewer's time off the click path (and in
replay, on the log's clock); reviewers decide. Their conclusions are kept in one hash per
campaign (``keys.CampaignKeys.referrer_risk``: numeric referrer id -> ``<state>|<score>|<source>``)
that ``click.lua`` reads with one HGET in the click's own round trip, so a later click on the
sharer's link knows it (``History.referrer_review``): detectors.review decides what that does
(no credit for findings about the sharer's own conduct, features for the model, a reason for
people). States:

- ``open``: under review: the referrer's own flag, or membership of a flagged chain, ring or
  burst (a cluster of accounts found together); the score is the finding's;
- ``fraud``: a reviewer decided the referrer (or a cluster, or an account, they are part of) was
  fraudulent: it stays until a reviewer says otherwise;
- ``suspect``: a suspicion about the sharer's links that is no accusation and raises no flag
  (their link is opened from public web pages: posted on a forum, by them or by someone who
  scraped it); the model weighs it, and only clicks that themselves come from a public page
  earn nothing;
- a ``legit`` decision on the referrer clears the entry, and later findings from the same flag
  cannot bring it back (a decided flag is not raised again).

Writers are listeners of the flag service (raised and decided flags), so every path that raises
or decides a flag (jobs, replay, API, console) keeps the hash current.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from detectors.features import CONDUCT
from gateway.flags import flag_id_for
from gateway.sharelinks import referrer_number
from gateway.store import keys
from gateway.store.scripts import script

if TYPE_CHECKING:
    from gateway.flags import Flag, FlagService

#: Clusters whose members are each under review (accounts found acting together). Browser and
#: prefix clusters are leads for a reviewer, not findings about each member.
STRUCTURES = frozenset({"chain", "ring", "burst"})


def parse_risk(raw: bytes | str | None) -> tuple[str, float, str]:
    """(state, score, source) of a risk entry; ("", 0.0, "") for none or a malformed one."""
    if not raw:
        return "", 0.0, ""
    text = raw.decode() if isinstance(raw, bytes) else raw
    state, _, rest = text.partition("|")
    score, _, source = rest.partition("|")
    try:
        return state, float(score), source
    except ValueError:
        return "", 0.0, ""


def entry(state: str, score: float, source: str) -> str:
    return f"{state}|{round(score, 4)!r}|{source}"


class ReferrerRisk:
    """Keeps the referrer-risk hash in step with flags: register ``on_flag_raised`` and
    ``on_decision`` with the flag service."""

    def __init__(self, store: Any, flags: FlagService) -> None:
        self._redis = store
        self._flags = flags

    # -- reading (review pages, tests) -----------------------------------------------------------

    def get(self, campaign_id: int, referrer: str) -> tuple[str, float, str]:
        number = self._number(campaign_id, referrer)
        raw = self._redis.hget(keys.campaign_keys(campaign_id).referrer_risk, str(number))
        return parse_risk(raw)

    def states(
        self, campaign_id: int, referrers: Sequence[str]
    ) -> dict[str, tuple[str, float, str]]:
        """The entries of those referrers that have one, in two round trips and without
        assigning numeric ids to referrers that have none (review pages only read)."""
        if not referrers:
            return {}
        ck = keys.campaign_keys(campaign_id)
        numbers = self._redis.hmget(ck.referrer_index, list(referrers))
        known = [(referrer, n) for referrer, n in zip(referrers, numbers, strict=True) if n]
        if not known:
            return {}
        raw = self._redis.hmget(ck.referrer_risk, [n for _, n in known])
        return {
            referrer: parse_risk(value)
            for (referrer, _), value in zip(known, raw, strict=True)
            if value
        }

    # -- flag listeners --------------------------------------------------------------------------

    def on_flag_raised(self, campaign_id: int, flag: Flag, before: Flag | None = None) -> int:
        """An open flag: its referrer, or each member of a flagged structure, is under review
        (written again as the finding changes: its score and source may)."""
        # Raised again with the same score (more evidence of the same weight): what was
        # written stands, and only a cluster's new members are new to it. Clusters grow a
        # member at a time and are raised at each: writing every member each time made replay
        # crawl (three round trips per member per raise).
        same = before is not None and before.status == "open" and before.score == flag.score
        if flag.kind == "referrer":
            if same and before is not None and _source(before) == _source(flag):
                return 0
            return self._open(campaign_id, flag.subject, flag.score, _source(flag))
        if flag.kind == "cluster" and _structure(flag):
            source = f"tree:{_structure(flag)}"
            known = set(before.members) if same and before is not None else set()
            return sum(
                self._open(campaign_id, member, flag.score, source)
                for member in flag.members
                # A reviewer cleared this sharer: a cluster found later does not undo that.
                if member not in known
                and self._flags.status_of(campaign_id, "referrer", member) != "legit"
            )
        return 0

    def on_decision(self, campaign_id: int, flag: Flag, decision: str) -> int:
        subjects: list[str] = []
        if flag.kind in ("referrer", "participant"):
            subjects = [flag.subject]
        elif flag.kind == "cluster" and _structure(flag):
            subjects = list(flag.members)
        changed = 0
        for subject in subjects:
            if decision == "fraud":
                changed += self._write(campaign_id, subject, "fraud", 1.0, "review")
            elif flag.kind == "referrer":
                changed += self._write(campaign_id, subject, "clear", 0.0, "")
            elif flag.kind == "cluster":
                # The cluster was a false alarm; a member's own flag, if any, still stands.
                own = self._flags.get(flag_id_for(campaign_id, "referrer", subject))
                changed += self._write(campaign_id, subject, "clear", 0.0, "")
                if own is not None and own.status in ("open", "fraud"):
                    if own.status == "fraud":
                        changed += self._write(campaign_id, subject, "fraud", 1.0, "review")
                    else:
                        changed += self._open(campaign_id, subject, own.score, _source(own))
        return changed

    # -- writing ---------------------------------------------------------------------------------

    def suspect(self, campaign_id: int, referrer: str, score: float, source: str) -> int:
        """A suspicion below a flag: kept unless something stronger is (an open flag, a
        decision)."""
        return self._write(campaign_id, referrer, "suspect", score, source)

    def _open(self, campaign_id: int, referrer: str, score: float, source: str) -> int:
        return self._write(campaign_id, referrer, "open", score, source)

    def _write(self, campaign_id: int, referrer: str, mode: str, score: float, source: str) -> int:
        number = self._number(campaign_id, referrer)
        value = "" if mode == "clear" else entry(mode, score, source)
        changed: int = script("referrer_risk")(
            self._redis,
            [keys.campaign_keys(campaign_id).referrer_risk],
            [number, mode, value, repr(round(score, 4)), ",".join(sorted(CONDUCT))],
        )
        return int(changed)

    def _number(self, campaign_id: int, referrer: str) -> int:
        number, _ = referrer_number(self._redis, campaign_id, referrer)
        return number


def _structure(flag: Flag) -> str:
    kind = flag.subject.partition(":")[0]
    return kind if kind in STRUCTURES else ""


def _source(flag: Flag) -> str:
    """The source of the flag's strongest finding ("clicks", "tree:ring"...), one about the
    sharer's own conduct first."""
    sources: dict[str, Any] = flag.evidence.get("sources") or {}
    if not sources:
        return "clicks"
    return max(
        sources.items(),
        key=lambda item: (item[0] in CONDUCT, float(item[1].get("score", 0.0)), item[0]),
    )[0]
