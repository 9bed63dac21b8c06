"""Copy check: share wording that platforms' rules treat as induced sharing.

WeChat's external-link rules (and Douyin's, Weibo's) ban content that rewards or pressures people
into forwarding: "share to get", like-collecting (集赞), help-me-win chains (助力), bargain chains
(砍价). Campaigns using such wording get their links blocked. The check warns when a campaign is
saved; it never refuses (marketing decides), and lists every hit with the rule it breaks.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from gateway.i18n import N_

#: (pattern, rule) pairs; patterns are matched case-insensitively on the text as written.
RULES: tuple[tuple[str, str], ...] = (
    (r"集赞", N_("collecting likes for a reward (集赞)")),
    (r"助力", N_("asking friends to help unlock a reward (助力)")),
    (r"砍价|砍一刀", N_("bargain chains: friends cut the price (砍价)")),
    (
        r"转发(?:\S{0,6}?)(?:得|领|送|抽|赢|即可|有礼|免费)",
        N_("reward for forwarding (转发得/转发领)"),
    ),
    (
        r"分享(?:\S{0,6}?)(?:得|领|送|抽|赢|即可|有礼|免费)",
        N_("reward for sharing (分享得/分享领)"),
    ),
    (
        r"(?:邀请|拉)(?:\S{0,4}?)好友(?:\S{0,6}?)(?:得|领|送|赢|即可|免费)",
        N_("reward for pulling in friends (拉好友得)"),
    ),
    (r"朋友圈", N_("asking for posts to Moments (朋友圈)")),
    (r"不转不是|必须转发|转发到\S{0,4}群", N_("pressure to forward (必须转发)")),
    (r"\bshare (?:this |it )?(?:to|and) (?:win|get|unlock|earn)\b", N_("reward for sharing")),
    (r"\bforward (?:this |it )?(?:to|and) (?:win|get|unlock|earn)\b", N_("reward for forwarding")),
    (r"\b(?:collect|get) \d* ?likes\b", N_("collecting likes for a reward")),
    (
        r"\binvite \d* ?friends? (?:to|and) (?:win|get|unlock)\b",
        N_("reward for pulling in friends"),
    ),
)
_COMPILED = tuple((re.compile(pattern, re.IGNORECASE), rule) for pattern, rule in RULES)


@dataclass(frozen=True)
class CopyWarning:
    field: str
    term: str
    rule: str

    def public(self) -> dict[str, Any]:
        return asdict(self)


def check_copy(texts: dict[str, str | None]) -> list[CopyWarning]:
    """Every induced-sharing hit in the given fields (field name -> text)."""
    warnings: list[CopyWarning] = []
    for field, text in texts.items():
        if not text:
            continue
        hits: list[tuple[int, int, str]] = []
        for pattern, rule in _COMPILED:
            for match in pattern.finditer(text):
                # One warning per stretch of text: the first rule that matches it names it.
                if not any(match.start() < end and start < match.end() for start, end, _ in hits):
                    hits.append((match.start(), match.end(), rule))
        warnings += [CopyWarning(field, text[start:end], rule) for start, end, rule in sorted(hits)]
    return warnings
