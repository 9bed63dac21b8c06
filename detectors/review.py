"""Referrer review: what off-path analysis and reviewers already concluded about the sharer.

The flagger and the tree watch run off the click path and find referrers worth a reviewer's time
(rings, alternate accounts, sybil chains, bursts, links drawing mostly suspicious clicks);
reviewers decide. Their conclusions reach the click path in the click's own round trip
(``History.referrer_review``, kept by gateway.referrer_risk). The visitor is served as usual
whatever it says: they are not the one under review. What a later click on the sharer's link
gets depends on what the finding is about:

- the sharer's own conduct (alternate accounts on their phones or at home, a ring, a sybil chain
  they belong to, sign-ups at a script's pace) or a reviewer's fraud decision: no credit
  (deny_credit); such clicks may look clean one by one (a spare phone is a phone);
- the crowd their link draws (a burst, a network filled with joins, mostly suspicious clicks, a
  phone that made accounts for them and for other sharers): the reason is shown, the click is
  scored on its own features (the model sees those clicks directly; an honest viral sharer or
  the victim of someone spamming their link draws such crowds too, and a factory's phone may
  sign up under an unwitting sharer); their rewards wait for the review all the same;
- a suspicion raised by no flag (the link is opened from public web pages): the model weighs it;
  a click that itself comes from a public page gets no credit (the sharer did not reach that
  stranger, whoever posted the link).
"""

from __future__ import annotations

from detectors.base import NOTHING, ClickInput, History, Signal
from detectors.features import AUTOMATED, CONDUCT, POSTED, external_referer

#: The score a click on the link of a referrer under review for their conduct gets at least:
#: enough to deny credit (Policy.deny_credit_at), never a challenge or a block on its own.
UNDER_REVIEW = 0.6
#: ... and of a referrer a reviewer decided was fraudulent.
DECIDED_FRAUD = 0.8
#: What a finding about the crowd, or a suspicion, scores as a rule (the model reads the
#: features): below deny_credit_at, so it counts only together with other evidence.
SOFT = 0.3
#: Why a referrer is under review, by the finding's source (gateway.flags sources), for people.
SOURCES = {
    "clicks": "most clicks on their links looked suspicious",
    "tree:self": "accounts joined under them from their own device or one phone",
    "tree:chain": "a chain of joins from few phones or networks",
    "tree:burst": "a burst of joins from few devices or networks",
    "tree:ring": "sharers converting each other's links",
    "tree:factory": "one phone made accounts for them and other sharers",
    "tree:prefix": "a network filled with joins under them",
    "tree:fast": "sign-ups seconds after the click",
    POSTED: "their link is opened from public web pages",
    AUTOMATED: "their link is fetched mostly by scripts",
}
#: How the engine prefixes this rule's reasons ("<detector name>: <reason>").
REASON_PREFIX = "referrer_review: "
UNDER_REVIEW_REASON = REASON_PREFIX + "the sharer is under review"


def describe(source: str) -> str:
    return SOURCES.get(source, source or "an open finding")


class ReferrerReviewDetector:
    name = "referrer_review"
    cost = 1
    reads = frozenset({"history"})

    def score(self, click: ClickInput, history: History) -> Signal:
        state = history.referrer_review
        if not state or not history.available:
            return NOTHING
        source = history.referrer_review_source
        if state == "fraud":
            return Signal(DECIDED_FRAUD, "the sharer was found cheating by a reviewer", "referrer")
        if source == POSTED and external_referer(click.referer):
            # A suspicion, or a flag on the clicks the posted link draws: either way the sharer
            # did not reach this stranger themselves.
            return Signal(
                UNDER_REVIEW,
                "opened from a public web page: the sharer's link is posted publicly",
                "referrer",
            )
        if state == "suspect":
            return Signal(SOFT, describe(source))
        why = f"the sharer is under review for {describe(source)}"
        if source in CONDUCT:
            return Signal(UNDER_REVIEW, why, "referrer")
        return Signal(SOFT, why)


def fed_back(reasons: list[str] | tuple[str, ...]) -> bool:
    """Whether a click's reasons include this rule: its score owes something to a finding
    already made about the sharer, so it is no new evidence about them."""
    return any(reason.startswith(REASON_PREFIX) for reason in reasons)


def only_under_review(reasons: list[str] | tuple[str, ...]) -> bool:
    """A click denied credit for nothing but its sharer being under review (no other rule, and
    the model alone would have allowed it): its conversion waits for the review instead."""
    return any(reason.startswith(UNDER_REVIEW_REASON) for reason in reasons) and all(
        reason.startswith(REASON_PREFIX) for reason in reasons
    )
