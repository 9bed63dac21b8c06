"""When a referrer's clicks add up to something the risk team should review.

A single suspicious click says little (carrier NAT, a cookie-less webview, a person who taps
twice); a referrer whose links draw mostly suspicious clicks, or clicks from their own device, is
worth a person's time. The same rules run online (gateway.flagger, on the recorded stream) and
in replay.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from detectors.network import DATACENTER_REASON, NetworkDetector
from detectors.review import REASON_PREFIX, fed_back

#: A click at or above this score counts as suspicious in a referrer's tally.
SUSPICIOUS = 0.5
#: A referrer is flagged with at least this many suspicious clicks making up this share.
MIN_SUSPICIOUS = 5
MIN_SHARE = 0.3
#: Clicks from the sharer's own device or IP before the referrer is flagged for self-referral.
#: Opening one's own link to check it is harmless (and a family shares a phone and a Wi-Fi);
#: credit for it is denied per click anyway, so only a habit is worth a reviewer's time. Three is
#: a household's ordinary evening on the sharer's phone: the sharer checking the link, a child
#: signing up on it, the child opening it again later (the clicks alone do not say who); the
#: alternate accounts of a sharer who signs them up there are the tree watch's to find, with
#: their sign-ups' timing.
MIN_SELF = 4
#: A lone click this suspicious is flagged on its own (when its referrer is not flagged).
CLICK_FLAG_SCORE = 0.9
#: Clicks arriving from public web pages (an external Referer: a forum, a deal site) before a
#: sharer's link counts as posted publicly, and their least share of the sharer's clicks. Friends
#: open links in chat apps; a link on a public page reaches strangers far beyond the sharer's
#: reach. No flag: the sharer may be the one who posted it or someone whose link was scraped.
POSTED_MIN = 10
POSTED_SHARE = 0.1
#: Requests from automation agents (HTTP libraries, headless browsers: answered with a preview,
#: never clicks) on a sharer's link before it is flagged, and their least share of the link's
#: requests. A scraper reading a link posted publicly fetches it a few dozen times among its
#: hundreds of people's clicks; a bot operation fetches its links hundreds to thousands of
#: times, and nobody else does.
AUTOMATED_MIN = 50
AUTOMATED_SHARE = 0.5
#: Clicks from datacenter networks (cloud servers and hosting, not VPNs: detectors.network)
#: before a sharer is flagged, and their least share of the sharer's clicks. People open links
#: from phones on home broadband and carrier networks; a server among a sharer's clicks now and
#: then is a link checker or an office proxy (a scraped link draws a few per hundred clicks).
#: Bots that copy phones' agents and headers from servers are scored low click by click (the
#: model has seen honest people behind such addresses) and draw no suspicious-click flag, but a
#: link opened mostly from servers is being worked by scripts: in the training and design
#: simulations no honest sharer's link drew more than 5% of its clicks from them, bots' 50-100%.
DATACENTER_MIN = 20
DATACENTER_SHARE = 0.3
_DATACENTER = f"{NetworkDetector.name}: {DATACENTER_REASON}"


@dataclass
class ReferrerTally:
    clicks: int = 0
    suspicious: int = 0
    blocked: int = 0
    self_clicks: int = 0
    detectors: Counter[str] = field(default_factory=Counter)
    #: Clicks that came from a public web page (an external Referer).
    external: int = 0
    #: Clicks from datacenter networks, whatever their score.
    datacenter: int = 0

    def add(
        self, score: float, decision: str, reasons: list[str], *, external: bool = False
    ) -> None:
        self.clicks += 1
        self.external += external
        self.datacenter += _DATACENTER in reasons
        if score >= SUSPICIOUS and not _owed_to_review(reasons):
            self.suspicious += 1
            for reason in reasons:
                self.detectors[reason.partition(":")[0]] += 1
        if decision == "block":
            self.blocked += 1
        if any(
            reason.startswith("self_referral:") and "own" in reason and "network" not in reason
            for reason in reasons
        ):
            self.self_clicks += 1


def _owed_to_review(reasons: list[str]) -> bool:
    """A click whose suspicion may come from the sharer being under review already (the model
    reads that too): no new evidence against them unless another rule fired as well."""
    return fed_back(reasons) and all(
        reason.startswith((REASON_PREFIX, "model:")) for reason in reasons
    )


def posted_share(tally: ReferrerTally) -> float | None:
    """The share of a sharer's clicks from public web pages when their link looks posted
    publicly, else None."""
    if tally.external < POSTED_MIN or tally.external < tally.clicks * POSTED_SHARE:
        return None
    return round(tally.external / tally.clicks, 4)


@dataclass(frozen=True)
class ReferrerFinding:
    score: float
    reasons: tuple[str, ...]


def referrer_finding(tally: ReferrerTally) -> ReferrerFinding | None:
    reasons: list[str] = []
    score = 0.0
    if tally.self_clicks >= MIN_SELF:
        score = max(score, 0.9)
        reasons.append(f"{tally.self_clicks} clicks from the sharer's own device or IP")
    share = tally.suspicious / tally.clicks if tally.clicks else 0.0
    if tally.suspicious >= MIN_SUSPICIOUS and share >= MIN_SHARE:
        score = max(score, min(1.0, 0.5 + share / 2))
        top = ", ".join(f"{name} ×{count}" for name, count in tally.detectors.most_common(4))
        reasons.append(f"{tally.suspicious} of {tally.clicks} clicks suspicious ({top})")
    servers = tally.datacenter / tally.clicks if tally.clicks else 0.0
    if tally.datacenter >= DATACENTER_MIN and servers >= DATACENTER_SHARE:
        score = max(score, min(1.0, 0.5 + servers / 2))
        reasons.append(
            f"{tally.datacenter} of {tally.clicks} clicks came from datacenter networks (servers, "
            "not people's phones)"
        )
    if not reasons:
        return None
    return ReferrerFinding(round(score, 4), tuple(reasons))


def automated_finding(automated: int, clicks: int) -> ReferrerFinding | None:
    """The finding on a link fetched mostly by scripts (``automated`` requests from automation
    agents, ``clicks`` recorded clicks), or None."""
    share = automated / (automated + clicks) if automated else 0.0
    if automated < AUTOMATED_MIN or share < AUTOMATED_SHARE:
        return None
    return ReferrerFinding(
        round(min(1.0, 0.5 + share / 2), 4),
        (f"{share:.0%} of the requests on their link came from scripts or headless browsers",),
    )
