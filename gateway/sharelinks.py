"""Minting and revoking a sharer's links for a campaign."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from gateway.campaigns import PERSON_PATTERN, PERSON_WORDS, Campaign
from gateway.errors import ApiError
from gateway.invites import InvalidCode, invite_code, parse_invite_code
from gateway.links import LinkCodec, ShareLink
from gateway.store import keys
from gateway.store.scripts import script

REFERRER_PATTERN = re.compile(PERSON_PATTERN)
#: An invite code's link is issued at the start of the current period (seconds): the link
#: lives up to this much less than one minted (link_ttl_days is at least a day).
INVITE_LINK_PERIOD = 3600


@dataclass(frozen=True)
class MintedLink:
    referrer: str
    token: str
    url: str
    scan_url: str
    qr_png: str
    qr_svg: str
    issued_at: int
    expires_at: int
    #: The invite code a person can type at ``/c/<code>`` when scanning fails.
    code: str

    def public(self) -> dict[str, Any]:
        return {
            "referrer": self.referrer,
            "token": self.token,
            "url": self.url,
            "scan_url": self.scan_url,
            "qr": {"png": self.qr_png, "svg": self.qr_svg},
            "code": self.code,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }


def check_referrer(referrer: object) -> str:
    if not isinstance(referrer, str) or not REFERRER_PATTERN.fullmatch(referrer):
        raise ApiError(
            400,
            "validation_failed",
            "invalid referrer",
            fields={"referrer": PERSON_WORDS},
        )
    return referrer


class ShareLinkService:
    def __init__(self, store: Any, codec: LinkCodec, public_url: str) -> None:
        self._redis = store
        self._codec = codec
        self._public_url = public_url

    def mint(self, campaign: Campaign, referrer: str, now: float | None = None) -> MintedLink:
        referrer = check_referrer(referrer)
        referrer_id, generation = referrer_number(self._redis, campaign.id, referrer)
        # A link minted after a revocation is the sharer's way back: their code works again.
        self._redis.hdel(keys.campaign_keys(campaign.id).referrer_revoked, referrer_id)
        issued = int(now if now is not None else time.time())
        link = ShareLink(campaign.id, int(referrer_id), issued, int(generation))
        return self.describe(link, referrer, campaign.link_ttl_days)

    def describe(self, link: ShareLink, referrer: str, ttl_days: int) -> MintedLink:
        token = self._codec.encode(link.as_link())
        scan_token = self._codec.encode(link.as_scan())
        base = f"{self._public_url}/s/"
        return MintedLink(
            referrer=referrer,
            token=token,
            url=base + token,
            scan_url=base + scan_token,
            qr_png=f"{base}{token}/qr.png",
            qr_svg=f"{base}{token}/qr.svg",
            issued_at=link.issued_at,
            expires_at=link.issued_at + ttl_days * 86400,
            code=invite_code(link.campaign_id, link.referrer_id),
        )

    def invite_target(self, code: str, now: float | None = None) -> str | None:
        """The URL of the current share link of the sharer an invite code names, issued at the
        start of the hour;
        None for a malformed code, an unknown campaign or sharer, or a sharer whose links were
        revoked (until a link is minted for them again)."""
        try:
            campaign_id, referrer_id = parse_invite_code(code)
        except InvalidCode:
            return None
        ck = keys.campaign_keys(campaign_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(ck.config)
        pipe.hget(ck.referrer_external, referrer_id)
        pipe.hget(ck.referrer_generation, referrer_id)
        pipe.hexists(ck.referrer_revoked, referrer_id)
        exists, external, generation, revoked = pipe.execute()
        if not exists or external is None or revoked:
            return None
        # Issued at the start of the hour: every visit within it gets the same link. Issued
        # each second, a code was a source of new tokens, each a poster nobody had rendered
        # (80 ms of CPU for two public requests, and a new one every second per sharer).
        issued = int(now if now is not None else time.time())
        issued -= issued % INVITE_LINK_PERIOD
        link = ShareLink(campaign_id, referrer_id, issued, int(generation or 0))
        return f"{self._public_url}/s/{self._codec.encode(link)}"

    def state(self, campaign: Campaign, referrer: str) -> dict[str, Any] | None:
        """A sharer's links as the click path sees them, read by key: their numeric id, link
        generation (how many times their links were revoked) and whether they are revoked now;
        None for a sharer who never had a link."""
        ck = keys.campaign_keys(campaign.id)
        number = self._redis.hget(ck.referrer_index, referrer)
        if number is None:
            return None
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(ck.referrer_generation, number)
        pipe.hexists(ck.referrer_revoked, number)
        generation, revoked = pipe.execute()
        return {
            "number": int(number),
            "generation": int(generation or 0),
            "revoked": bool(revoked),
        }

    def revoke(self, campaign: Campaign, referrer: str) -> int:
        referrer = check_referrer(referrer)
        ck = keys.campaign_keys(campaign.id)
        generation = int(
            script("revoke")(
                self._redis,
                [ck.referrer_index, ck.referrer_generation, ck.referrer_revoked],
                [referrer],
            )
        )
        if generation < 0:
            raise ApiError(404, "referrer_not_found", f"{referrer!r} has no links in this campaign")
        return generation


def referrer_number(store: Any, campaign_id: int, referrer: str) -> tuple[int, int]:
    """The referrer's numeric id (assigned on first use) and current link generation.

    Every sharer (minting) and every participant (joining: their own number) is numbered here
    first, so a name new to the campaign is added to the people lookup's index here, once."""
    ck = keys.campaign_keys(campaign_id)
    number, generation, new = script("mint")(
        store,
        [ck.referrer_index, ck.referrer_external, ck.referrer_generation, ck.counters],
        [referrer],
    )
    if new:
        # Not atomic with the number (another slot in a cluster): a process dying in between
        # leaves the person out until `refgate people reindex`, which adds them again.
        store.sadd(keys.person_campaigns(referrer), campaign_id)
    return int(number), int(generation)
