"""Every Redis key refgate uses, defined here and nowhere else.

Campaign data lives under the hash tag ``{c<id>}`` so that all keys one operation touches for a
campaign hash to one Redis Cluster slot (multi-key scripts and MULTI need that); campaigns spread
over slots. Keys without a tag are only ever used one at a time.
"""

from __future__ import annotations

from functools import lru_cache

PREFIX = "rg"

# Global keys: single-key operations only.
CAMPAIGN_SEQ = f"{PREFIX}:campaign-seq"  # INCR source of campaign ids
CAMPAIGN_SLUGS = f"{PREFIX}:campaign-slugs"  # hash slug -> id
API_KEYS = f"{PREFIX}:api-keys"  # hash sha256(key) -> JSON record


class CampaignKeys:
    """Key names of one campaign, built once per id and cached (the click path uses them)."""

    __slots__ = (
        "campaign_id",
        "click_prefix",
        "config",
        "counters",
        "events",
        "logo",
        "referrer_external",
        "referrer_generation",
        "referrer_index",
        "tag",
        "visitors",
    )

    def __init__(self, campaign_id: int) -> None:
        tag = f"{PREFIX}:{{c{campaign_id}}}"
        self.campaign_id = campaign_id
        self.tag = tag
        #: hash: ``json`` (the campaign document), ``ver`` (bumped on every change)
        self.config = f"{tag}:config"
        #: hash of counters: clicks, scans, previews, decisions, referrer id sequence...
        self.counters = f"{tag}:counters"
        #: stream of click events, one entry per recorded click
        self.events = f"{tag}:events"
        #: HyperLogLog of visitor ids
        self.visitors = f"{tag}:visitors"
        #: hash external referrer id -> numeric id (numeric ids keep tokens short)
        self.referrer_index = f"{tag}:referrer-index"
        #: hash numeric id -> external id
        self.referrer_external = f"{tag}:referrer-external"
        #: hash numeric id -> link generation; revoking a sharer bumps it
        self.referrer_generation = f"{tag}:referrer-generation"
        #: string: the campaign logo's image bytes (the document keeps only their SHA-256)
        self.logo = f"{tag}:logo"
        #: prefix of per-click records (``<prefix><click id>``), kept for the attribution window
        self.click_prefix = f"{tag}:click:"

    def click(self, click_id: str) -> str:
        return self.click_prefix + click_id


@lru_cache(maxsize=4096)
def campaign_keys(campaign_id: int) -> CampaignKeys:
    return CampaignKeys(campaign_id)
