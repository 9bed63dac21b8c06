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
        "alerts",
        "campaign_id",
        "click_prefix",
        "config",
        "counters",
        "events",
        "referrer_external",
        "referrer_generation",
        "referrer_index",
        "tag",
        "timeline",
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
        #: hash "<hour>|<counter>" -> count: the counters per hour (charts, block watch)
        self.timeline = f"{tag}:timeline"
        #: hash platform -> JSON of the open "possible block" alert
        self.alerts = f"{tag}:alerts"
        #: hash external referrer id -> numeric id (numeric ids keep tokens short)
        self.referrer_index = f"{tag}:referrer-index"
        #: hash numeric id -> external id
        self.referrer_external = f"{tag}:referrer-external"
        #: hash numeric id -> link generation; revoking a sharer bumps it
        self.referrer_generation = f"{tag}:referrer-generation"
        #: prefix of per-click records (``<prefix><click id>``), kept for the attribution window
        self.click_prefix = f"{tag}:click:"

    def click(self, click_id: str) -> str:
        return self.click_prefix + click_id

    def velocity(self, dimension: str, value: object, bucket: str) -> str:
        """A click-history counter or HyperLogLog: ``dimension`` v(isitor), i(p), p(refix),
        r(eferrer), rn (referrer networks), iv (visitors behind an IP); ``bucket`` m<minute>,
        h<hour> or d<day>. They expire a bucket after their window."""
        return f"{self.tag}:h:{dimension}:{value}:{bucket}"

    def sharer_devices(self, referrer_id: int) -> str:
        """Set of the referrer's own visitor ids and IP hashes (from their own join)."""
        return f"{self.tag}:sharer-devices:{referrer_id}"

    def sharer_networks(self, referrer_id: int) -> str:
        """Set of the referrer's own network prefixes (from their own join)."""
        return f"{self.tag}:sharer-networks:{referrer_id}"

    def referrer_times(self, referrer_id: int) -> str:
        """List of the times of the referrer's latest clicks, newest first."""
        return f"{self.tag}:referrer-times:{referrer_id}"


@lru_cache(maxsize=4096)
def campaign_keys(campaign_id: int) -> CampaignKeys:
    return CampaignKeys(campaign_id)


def job_lock(name: str) -> str:
    """Held by the process running a periodic job (gateway.jobs); expires after its interval."""
    return f"{PREFIX}:job-lock:{name}"
