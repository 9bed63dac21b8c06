"""Running the detectors and turning their signals into one score, reasons and a decision."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from detectors.base import ClickInput, Detector, History
from detectors.crawlers import CrawlerDetector
from detectors.headers import HeaderConsistencyDetector


class Decision(StrEnum):
    ALLOW = "allow"
    CHALLENGE = "challenge"
    DENY_CREDIT = "deny_credit"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class Policy:
    """Score thresholds, per campaign; a click at or above a threshold gets that decision."""

    deny_credit_at: float = 0.5
    challenge_at: float = 0.75
    block_at: float = 0.95


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float
    decision: Decision
    reasons: tuple[str, ...] = field(default=())


class Engine:
    def __init__(self, detectors: Sequence[Detector] | None = None) -> None:
        chosen = list(detectors) if detectors is not None else default_detectors()
        self.detectors = tuple(sorted(chosen, key=lambda d: d.cost))

    def score(self, click: ClickInput, history: History, policy: Policy = Policy()) -> Verdict:
        top = 0.0
        reasons: list[str] = []
        for detector in self.detectors:
            signal = detector.score(click, history)
            if signal.value > 0.0:
                reasons.append(f"{detector.name}: {signal.reason}")
                top = max(top, signal.value)
        return Verdict(top, decide(top, policy), tuple(reasons))


def decide(score: float, policy: Policy) -> Decision:
    if score >= policy.block_at:
        return Decision.BLOCK
    if score >= policy.challenge_at:
        return Decision.CHALLENGE
    if score >= policy.deny_credit_at:
        return Decision.DENY_CREDIT
    return Decision.ALLOW


def default_detectors() -> list[Detector]:
    return [CrawlerDetector(), HeaderConsistencyDetector()]
