"""What a sharer should share, per platform: the link, or the QR poster where links are blocked.

Switching to the poster is not a way around moderation: the poster carries the same campaign,
the same destination and a QR code of the same signed link. It is what people inside an app that
blocks the campaign's links can still use (a QR code in an image is scanned, not clicked).
"""

from __future__ import annotations

from typing import Any, Literal

from gateway.campaigns import Campaign
from gateway.sharelinks import MintedLink

Mode = Literal["link", "qr"]


def share_mode(campaign: Campaign, platform: str | None) -> Mode:
    return "qr" if platform is not None and campaign.blocked_on(platform) else "link"


def share_text(campaign: Campaign, url: str) -> str:
    """The campaign's share text with ``{url}`` (and ``{name}``) filled in; the link is
    appended when the text has no ``{url}``. With ``url`` empty, the words without the link,
    spaces around where it stood closed up."""
    template = campaign.share_text or "{name} {url}"
    text = template.replace("{name}", campaign.name)
    if not url:
        return " ".join(text.replace("{url}", " ").split())
    return text.replace("{url}", url) if "{url}" in text else f"{text} {url}"


def share_material(campaign: Campaign, minted: MintedLink, platform: str | None) -> dict[str, Any]:
    base = minted.url
    mode = share_mode(campaign, platform)
    return {
        "platform": platform,
        "mode": mode,
        # Where the platform blocks the campaign's links, the words go beside the poster without
        # the link: a post carrying a blocked link is itself blocked, the poster's QR code is not.
        "share_text": share_text(campaign, minted.url if mode == "link" else ""),
        "poster": f"{base}/poster.png",
    }
