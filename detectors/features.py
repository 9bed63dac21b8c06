"""The model's features: one definition for serving, replay and training.

Every feature is a plain float computed from the click and its history; the names are part of
an exported model, which refuses to load against a different list.
"""

from __future__ import annotations

import math

from detectors.base import ClickInput, History
from detectors.crawlers import is_crawler
from detectors.fanout import reach_growth
from detectors.headers import accept_language_problem, hints_problem
from detectors.timing import interval_stats

FEATURE_NAMES: tuple[str, ...] = (
    "ua_crawler",
    "no_accept_language",
    "odd_accept_language",
    "hints_mismatch",
    "net_datacenter",
    "net_vpn",
    "returning_visitor",
    "in_app",
    "scan",
    "log_visitor_1m",
    "log_visitor_1h",
    "log_ip_1m",
    "log_ip_1h",
    "log_prefix_1m",
    "log_prefix_1h",
    "log_ip_clicks_per_visitor",
    "log_referrer_1m",
    "log_referrer_1h",
    "log_referrer_networks_1h",
    "referrer_network_ratio",
    "log_reach_growth",
    "self_visitor",
    "self_device",
    "self_prefix",
    "timing_regularity",
    "timing_fast",
    "referer_external",
    "desktop",
    "night",
    "log_campaign_1h",
    "referrer_share",
    "referrer_steadiness",
    "log_referrer_prev_1h",
    "referrer_review",
    "referrer_suspicion",
)

#: Sources of findings about a sharer's own conduct (gateway.trees; "review": a reviewer's fraud
#: decision), as against the crowd their link draws (detectors.review).
CONDUCT = frozenset({"tree:self", "tree:chain", "tree:ring", "tree:fast", "review"})

#: The source of findings that a sharer's link is posted on public pages (gateway.flagger): a
#: suspicion, or a flag on the clicks such a link draws.
POSTED = "clicks:posted"
#: The source of a flag on a link fetched mostly by scripts (gateway.flagger): about the crowd the
#: link draws (anyone can point a script at a link), not the sharer's own conduct.
AUTOMATED = "clicks:automated"

#: Chat and social apps whose pages legitimately send a Referer when a link is tapped there.
_APP_REFERERS = (
    "weixin.qq.com",
    "servicewechat.com",
    "qq.com",
    "weibo.",
    "douyin.com",
    "xiaohongshu.com",
)


def _log(value: float) -> float:
    # A comparison rather than max(value, 0.0): the same result, and 13 builtin calls fewer
    # on every click.
    return math.log1p(value) if value > 0.0 else 0.0


def features(click: ClickInput, history: History) -> list[float]:
    language = accept_language_problem(click.accept_language)
    timing = interval_stats(history.recent_times)
    regularity, fast = 0.0, 0.0
    if timing is not None:
        mean, cv = timing
        regularity = max(0.0, 1.0 - min(cv, 1.0))
        fast = 1.0 if mean < 2.0 else 0.0
    return [
        1.0 if is_crawler(click.ua) else 0.0,
        1.0 if language.startswith("no ") else 0.0,
        1.0 if language and not language.startswith("no ") else 0.0,
        1.0 if hints_problem(click) else 0.0,
        1.0 if click.network == "datacenter" else 0.0,
        1.0 if click.network == "vpn" else 0.0,
        0.0 if click.new_visitor else 1.0,
        1.0 if click.in_app else 0.0,
        1.0 if click.scan else 0.0,
        _log(history.visitor_1m),
        _log(history.visitor_1h),
        _log(history.ip_1m),
        _log(history.ip_1h),
        _log(history.prefix_1m),
        _log(history.prefix_1h),
        _log(history.ip_1h / max(history.ip_visitors_1h, 1)),
        _log(history.referrer_1m),
        _log(history.referrer_1h),
        _log(history.referrer_networks_1h),
        history.referrer_networks_1h / max(history.referrer_1h, 1),
        _log(reach_growth(history)),
        1.0 if history.self_visitor else 0.0,
        1.0 if history.self_device else 0.0,
        1.0 if history.self_prefix else 0.0,
        regularity,
        fast,
        1.0 if external_referer(click.referer) else 0.0,
        1.0 if click.platform == "desktop" else 0.0,
        1.0 if 1 <= local_hour(click.ts) <= 6 else 0.0,
        _log(history.campaign_1h),
        history.referrer_1h / max(history.campaign_1h, history.referrer_1h, 1),
        steadiness(history, click.ts),
        _log(history.referrer_prev_1h),
        # Fed back from off the path (detectors.review): the score of a finding about the
        # sharer's own conduct they are under review for (alternate accounts, rings, chains:
        # their clicks may look clean), 1 once a reviewer decided they cheated. Findings about
        # the crowd their link draws are not fed back: the model scores those clicks directly,
        # and honest viral sharers and victims of spam draw such crowds too.
        review_score(history),
        # ... or the score of a suspicion that raised no flag (a link posted on public pages),
        # or of a flag on the clicks such a link draws.
        suspicion(history),
    ]


def suspicion(history: History) -> float:
    """The score of a finding that the sharer's link is posted on public pages: a suspicion, or
    a flag on the clicks it draws (the stronger entry replaces the suspicion in the store)."""
    if history.referrer_review == "suspect":
        return history.referrer_review_score
    if history.referrer_review == "open" and history.referrer_review_source == POSTED:
        return history.referrer_review_score
    return 0.0


def review_score(history: History) -> float:
    if history.referrer_review == "fraud":
        return 1.0
    if history.referrer_review == "open" and history.referrer_review_source in CONDUCT:
        return history.referrer_review_score
    return 0.0


def local_hour(ts: float) -> int:
    """Hour of day in China (UTC+8, no daylight saving): people sleep, scripts do not."""
    return int((ts + 8 * 3600) // 3600) % 24


def external_referer(referer: str) -> bool:
    """A Referer from a web page other than a chat app's: a link posted somewhere public."""
    if not referer.startswith(("http://", "https://")):
        return False
    return not any(marker in referer for marker in _APP_REFERERS)


def steadiness(history: History, ts: float) -> float:
    """1.0 when a busy referrer's pace this hour matches the hour before (a machine's pace);
    low for bursts that come and go (people sharing). 0 for referrers too quiet to tell. This
    hour's count is projected from the part of the hour gone by."""
    elapsed = max((ts % 3600) / 3600, 0.1)
    now, before = history.referrer_1h / elapsed, float(history.referrer_prev_1h)
    if max(now, before) < 20:
        return 0.0
    return min(now, before) / max(now, before)
