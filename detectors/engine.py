"""Running the detectors and the model, and turning them into one score, reasons and a decision.

Rules and model combine like this: the model (when one is active) scores the click's features;
without one, the rules' signals combine as independent evidence (noisy-OR). Hard rules (kinds
"automation", "flood", "self", "spoofing") then set a floor: a known crawler is a crawler whatever
the model thinks. Reasons list every rule that fired and the model's strongest factors.

Decisions, cheapest harm first:
- ``allow``: redirect, the referrer may be credited.
- ``deny_credit``: redirect as usual, no credit. Used for self-referral (a person, but their own
  link), clicks on the link of a sharer under review or found cheating (detectors.review), and
  moderately suspicious clicks. Nothing tells a fraudster they were caught.
- ``challenge``: an interstitial a person passes with one tap; conversions from it are held for
  review rather than credited.
- ``block``: a 403 page; only for clear abuse (automation, floods, datacenter floods).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from detectors.base import ClickInput, Detector, History, Signal, four_decimals
from detectors.crawlers import CrawlerDetector
from detectors.fanout import FanOutDetector
from detectors.features import features
from detectors.headers import HeaderConsistencyDetector
from detectors.model import ExportedModel
from detectors.network import NetworkDetector
from detectors.review import ReferrerReviewDetector
from detectors.selfreferral import SelfReferralDetector
from detectors.timing import TimingRegularityDetector
from detectors.velocity import VelocityDetector

log = logging.getLogger(__name__)

#: Signal kinds that put a floor under the score whatever the model says ("referrer": the
#: sharer is under review or was found cheating; detectors.review).
HARD_KINDS = frozenset({"automation", "flood", "self", "spoofing", "referrer"})
#: Signal kinds that may lead to a block (clear abuse, not a person).
BLOCKABLE_KINDS = frozenset({"automation", "flood"})


class Decision(StrEnum):
    ALLOW = "allow"
    CHALLENGE = "challenge"
    DENY_CREDIT = "deny_credit"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class Policy:
    """Score thresholds, per campaign (defaults tuned on simulator traffic; see the README)."""

    deny_credit_at: float = 0.5
    challenge_at: float = 0.85
    block_at: float = 0.95


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float
    decision: Decision
    reasons: tuple[str, ...] = field(default=())
    #: The feature vector scored: recorded with the click event (rounded), so recorded traffic
    #: can be replayed, and decided flags used as training labels (gateway.training_data).
    features: tuple[float, ...] = field(default=(), compare=False, repr=False)


class Engine:
    def __init__(
        self, detectors: Sequence[Detector] | None = None, model: ExportedModel | None = None
    ) -> None:
        chosen = list(detectors) if detectors is not None else default_detectors()
        self.detectors = tuple(sorted(chosen, key=lambda d: d.cost))
        self.model = model

    def score(self, click: ClickInput, history: History, policy: Policy = Policy()) -> Verdict:
        fired: list[tuple[str, Signal]] = []
        for detector in self.detectors:
            signal = detector.score(click, history)
            if signal.value > 0.0:
                fired.append((detector.name, signal))
        vector = features(click, history)
        model = self.model
        reasons = [f"{name}: {signal.reason}" for name, signal in fired]
        if model is not None:
            try:
                score = model.predict(vector)
            except Exception:
                score = math.nan
            if not math.isfinite(score):
                # A model that cannot score must not take the click path down: the rules
                # score, and this process drops the model (its refresh job loads it again in
                # seconds, so a fixed one comes back; a broken one is logged each time).
                log.error("model %s failed to score a click; scoring with the rules", model.version)
                self.model = model = None
            elif score >= policy.deny_credit_at:
                # Which features pushed the score up costs ten times the score itself (a walk
                # of every tree's path): that is for review, off the click path (explain()).
                reasons.append(f"model: {score:.2f}")
        if model is None:
            remaining = 1.0
            for _, signal in fired:
                remaining *= 1.0 - signal.value
            score = 1.0 - remaining
        hard = [signal for _, signal in fired if signal.kind in HARD_KINDS]
        if hard:
            score = max(score, max(signal.value for signal in hard))
        blockable = max(
            (signal.value for _, signal in fired if signal.kind in BLOCKABLE_KINDS), default=0.0
        )
        decision = decide(score, policy, {signal.kind for _, signal in fired}, blockable)
        return Verdict(four_decimals(score), decision, tuple(reasons), tuple(vector))


def explain(model: ExportedModel | None, vector: Sequence[float]) -> list[tuple[str, float]]:
    """The features that pushed a click's model score up most, for reviewers (off the path)."""
    return model.top_factors(vector) if model is not None else []


def decide(
    score: float,
    policy: Policy,
    kinds: frozenset[str] | set[str] = frozenset(),
    blockable: float = 0.0,
) -> Decision:
    # Blocking takes one clear piece of evidence of abuse on its own, never an accumulation of
    # soft signals: a person must not see a 403 because several weak hints lined up.
    if blockable >= policy.block_at and score >= policy.block_at:
        return Decision.BLOCK
    if "self" in kinds and score >= policy.deny_credit_at:
        # A person on their own link: challenging them proves nothing; just no credit.
        return Decision.DENY_CREDIT
    if score >= policy.challenge_at:
        return Decision.CHALLENGE
    if score >= policy.deny_credit_at:
        return Decision.DENY_CREDIT
    return Decision.ALLOW


def default_detectors() -> list[Detector]:
    return [
        CrawlerDetector(),
        ReferrerReviewDetector(),
        NetworkDetector(),
        HeaderConsistencyDetector(),
        SelfReferralDetector(),
        VelocityDetector(),
        FanOutDetector(),
        TimingRegularityDetector(),
    ]
