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
MODELS = f"{PREFIX}:models"  # hash version -> exported model JSON (detectors.model)
ACTIVE_MODEL = f"{PREFIX}:model-active"  # string: the version every worker scores with
STAFF_USERS = f"{PREFIX}:staff-users"  # hash email -> JSON record (gateway.users)
AUDIT_LOG = f"{PREFIX}:audit"  # stream of staff actions (gateway.audit)
#: hash participant -> "<campaign id>|<finding>": where the tree watch found them colluding (in
#: a ring, among an account factory's sharers; first found wins): the same accounts reconvene in
#: other campaigns (gateway.trees)
COLLUDERS = f"{PREFIX}:colluders"
#: Set once every campaign's people are in :func:`person_campaigns` (by the first campaign of an
#: empty store, else by ``refgate people reindex``); until then a people lookup reads every
#: campaign (gateway.people).
PEOPLE_INDEXED = f"{PREFIX}:people-indexed"


#: Field of a campaign's counters hash, set once every flag of the campaign is in the amount-at-
#: stake index (at creation; for older campaigns by ``refgate flags reindex``).
STAKE_INDEXED = "stake_indexed"

#: Field of a campaign's counters hash, set once every reward is in the by-status indexes
#: (:meth:`CampaignKeys.rewards_by_status`; at creation, for older campaigns by the first
#: listing filtered by status, gateway.rewards).
REWARD_STATUS_INDEXED = "reward_status_indexed"

#: The states of a reward, in the order of :meth:`CampaignKeys.reward_status_indexes`.
REWARD_STATUSES = ("credited", "held", "denied", "clawed_back")


class CampaignKeys:
    """Key names of one campaign, built once per id and cached (the click path uses them)."""

    __slots__ = (
        "alerts",
        "campaign_id",
        "click_prefix",
        "config",
        "counters",
        "events",
        "history_prefix",
        "logo",
        "referrer_external",
        "referrer_generation",
        "referrer_index",
        "referrer_revoked",
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
        #: hash numeric id -> 1 while a sharer's links are revoked and none was minted since:
        #: their invite code (which names the sharer, not a link) leads nowhere meanwhile
        self.referrer_revoked = f"{tag}:referrer-revoked"
        #: string: the campaign logo's image bytes (the document keeps only their SHA-256)
        self.logo = f"{tag}:logo"
        #: prefix of per-click records (``<prefix><click id>``), kept for the attribution window
        self.click_prefix = f"{tag}:click:"
        #: prefix of the click-history counters (:meth:`velocity`), for the click path to build
        #: fifteen names per click without fifteen calls
        self.history_prefix = f"{tag}:h:"

    def click(self, click_id: str) -> str:
        return self.click_prefix + click_id

    def challenge_answered(self, click_id: str) -> str:
        """String set when a challenge for the click is first passed; expires with the
        challenge (gateway.challenge.MAX_SECONDS), after which no answer passes anyway."""
        return f"{self.tag}:challenge-answered:{click_id}"

    def flag(self, flag_id: str) -> str:
        """Hash of one flag (see gateway.flags)."""
        return f"{self.tag}:flag:{flag_id}"

    @property
    def flags_all(self) -> str:
        """Sorted set of the campaign's flags by creation time."""
        return f"{self.tag}:flags"

    @property
    def flags_open(self) -> str:
        """Sorted set of the campaign's open flags by score."""
        return f"{self.tag}:flags-open"

    @property
    def flags_stake(self) -> str:
        """Sorted set of the campaign's flags by amount at stake (every flag): the score packs
        the amount, the flag's score, status and kind (gateway.flags.StakeEntry; kept by the
        scripts that change amounts, through ``lua/_stake.lua``)."""
        return f"{self.tag}:flags-stake"

    @property
    def flags_stake_open(self) -> str:
        """Sorted set of the campaign's open flags by amount at stake (packed as flags_stake)."""
        return f"{self.tag}:flags-stake-open"

    @property
    def cluster_index(self) -> str:
        """Hash participant -> comma-separated ids of the cluster flags listing them as a
        member (whose amount at stake their rewards change)."""
        return f"{self.tag}:cluster-index"

    @property
    def click_conversions(self) -> str:
        """Hash click id -> comma-separated participants who converted on that click (the
        rewards a click flag is about)."""
        return f"{self.tag}:click-conversions"

    @property
    def decisions(self) -> str:
        """Stream of the risk team's decisions on flags (labels, ledger input)."""
        return f"{self.tag}:decisions"

    def referrer_tally(self, referrer: str) -> str:
        """Hash of a referrer's running click tally kept by the flagger."""
        return f"{self.tag}:tally:{referrer}"

    # -- referral tree, conversions and rewards (gateway.conversions, gateway.rewards) --------

    def participant(self, user: str) -> str:
        """Hash of a participant: parent, depth, path, joined, subtree size and height, ..."""
        return f"{self.tag}:p:{user}"

    def children(self, user: str) -> str:
        """Sorted set of a participant's children by join time."""
        return f"{self.tag}:children:{user}"

    @property
    def idempotency(self) -> str:
        """Hash idempotency key -> the conversion's answer."""
        return f"{self.tag}:idempotency"

    @property
    def budget(self) -> str:
        """Hash: spent and held amounts."""
        return f"{self.tag}:budget"

    def referrer_rewards(self, referrer: str) -> str:
        """Hash of a referrer's reward totals: credited, held, conversions."""
        return f"{self.tag}:rref:{referrer}"

    @property
    def daily_spend(self) -> str:
        """Hash day number -> amount credited or held that day (the daily cap)."""
        return f"{self.tag}:daily-spend"

    def reward(self, user: str) -> str:
        """Hash of the reward decided for a participant's conversion."""
        return f"{self.tag}:reward:{user}"

    @property
    def rewards(self) -> str:
        """Sorted set of rewarded conversions (participant -> time)."""
        return f"{self.tag}:rewards"

    def referrer_reward_index(self, referrer: str) -> str:
        """Sorted set of a referrer's rewarded conversions (participant -> time)."""
        return f"{self.tag}:rewards-by:{referrer}"

    def rewards_by_status(self, status: str) -> str:
        """Sorted set of the rewarded conversions whose reward is in ``status`` now
        (participant -> time, as :attr:`rewards`), kept by convert.lua and settle_reward.lua."""
        return f"{self.tag}:rewards-st:{status}"

    def referrer_rewards_by_status(self, referrer: str, status: str) -> str:
        """Sorted set of a referrer's rewarded conversions in ``status`` (participant -> time).
        The status comes first: a referrer id may hold ':'."""
        return f"{self.tag}:rewards-by-st:{status}:{referrer}"

    def reward_status_indexes(self, referrer: str) -> list[str]:
        """The campaign's by-status indexes, then the referrer's, each in REWARD_STATUSES order:
        the keys ``lua/_status_index.lua`` takes."""
        return [self.rewards_by_status(s) for s in REWARD_STATUSES] + [
            self.referrer_rewards_by_status(referrer, s) for s in REWARD_STATUSES
        ]

    @property
    def ledger(self) -> str:
        """Stream of reward ledger entries: credited, held, denied, released, clawed_back."""
        return f"{self.tag}:ledger"

    @property
    def conversions(self) -> str:
        """Stream of conversions, accepted and refused."""
        return f"{self.tag}:conversions"

    @property
    def top_sharers(self) -> str:
        """Sorted set referrer -> credited referrals."""
        return f"{self.tag}:top-sharers"

    @property
    def job_cursors(self) -> str:
        """Hash job -> stream id: how far each flagging job (the flagger, the tree watch) has
        read the campaign's streams (gateway.store.follow)."""
        return f"{self.tag}:job-cursors"

    @property
    def outbox(self) -> str:
        """Stream of events for webhooks, written atomically with what they report."""
        return f"{self.tag}:outbox"

    # -- tree-level detection (gateway.trees) ----------------------------------------------------

    @property
    def device_owners(self) -> str:
        """Hash browser id or address|agent -> the participant who joined from it first."""
        return f"{self.tag}:device-owners"

    def own_device_joins(self, participant: str) -> str:
        """Set of participants who joined under this one from this one's own browser or device."""
        return f"{self.tag}:own-device-joins:{participant}"

    @property
    def made_on(self) -> str:
        """Hash participant -> the sharer on whose phone their account was made (an alternate
        account found by gateway.trees)."""
        return f"{self.tag}:made-on"

    def phone_joins(self, participant: str, phone: str) -> str:
        """Set of participants who joined under this one from one phone (browser id, app
        install, or address|agent at a home's address)."""
        return f"{self.tag}:phone-joins:{participant}:{phone}"

    def ring_edges(self, participant: str) -> str:
        """Set of sharers on whose links this participant's own devices converted."""
        return f"{self.tag}:ring-edges:{participant}"

    def phone_sharers(self, phone: str) -> str:
        """Set of sharers under whom accounts were made on one phone (browser id, app install, or
        address|agent at a home's address) after the phone's first account."""
        return f"{self.tag}:phone-sharers:{phone}"

    def browser_joins(self, visitor: str) -> str:
        """Set of participants who joined from one browser (visitor id)."""
        return f"{self.tag}:browser-joins:{visitor}"

    def prefix_joins(self, prefix: str, hour: int) -> str:
        """Hash participant -> parent of the joins from one network prefix in one hour."""
        return f"{self.tag}:prefix-joins:{prefix}:{hour}"

    @property
    def automated(self) -> str:
        """Hash numeric referrer id -> requests on the sharer's link from automation agents (HTTP
        libraries, headless browsers; not a chat app's unfurler), which are answered with a
        preview and never recorded as clicks; counted in memory and written by the recorder's
        flusher, judged by gateway.flagger."""
        return f"{self.tag}:automated"

    def join_pace(self, participant: str) -> str:
        """Hash of the sign-ups under a sharer: ``joins``, and ``quick`` ones (seconds after the
        click)."""
        return f"{self.tag}:join-pace:{participant}"

    def click_history(self, hour: int) -> str:
        """Hash of the campaign's click history of an hour (``hour`` = unix seconds // 3600):
        each subject's counts of the hour and of its latest minute, exact distinct counts and
        the links' latest click times, read and written by click.lua (its comments give the
        fields). Expires the hour after its own."""
        return f"{self.history_prefix}h{hour}"

    def referrer_networks_today(self, referrer_id: int, day: int) -> str:
        """HyperLogLog of the network prefixes a referrer's links were opened from on a day
        (unix seconds // 86400); expires the day after."""
        return f"{self.history_prefix}rn:{referrer_id}:d{day}"

    def sharer_own(self, referrer_id: int) -> str:
        """Set of what a participant joined with: their browser (visitor id), their phone (IP
        hash|agent hash) and their network prefix. The three never look alike (a prefix has a
        '/', a device a '|', a visitor id neither), so one set and one SMISMEMBER serve all."""
        return f"{self.tag}:sharer-own:{referrer_id}"

    @property
    def referrer_risk(self) -> str:
        """Hash numeric referrer id -> what review and off-path analysis concluded about the
        sharer, ``<state>|<score>|<source>`` (gateway.referrer_risk): written by the flagging
        jobs and by decisions, read by the click path (one HGET in click.lua)."""
        return f"{self.tag}:referrer-risk"


@lru_cache(maxsize=4096)
def campaign_keys(campaign_id: int) -> CampaignKeys:
    return CampaignKeys(campaign_id)


#: Every campaign's participant hashes (:meth:`CampaignKeys.participant`), for one SCAN of the
#: keyspace (``{`` is no pattern character); :func:`participant_of` reads a match back.
PARTICIPANT_PATTERN = f"{PREFIX}:{{c*}}:p:*"


def participant_of(key: str) -> tuple[int, str] | None:
    """(campaign id, participant) of a participant hash's name, None for any other key."""
    head, found, user = key.partition("}:p:")
    tag = f"{PREFIX}:{{c"
    if not found or not head.startswith(tag) or not head[len(tag) :].isdigit():
        return None
    return int(head[len(tag) :]), user


def person_campaigns(name: str) -> str:
    """Set of the ids of the campaigns where an external id is a sharer or a participant (the
    people lookup reads those only): added when the campaign first numbers them (mint.lua, for
    a link or a join). One key per person across campaigns, so it has no campaign's hash tag
    and is only written and read on its own."""
    return f"{PREFIX}:person:{name}"


def api_key_form(form_id: str) -> str:
    """String: the id of the API key a console creation form made (gateway.apikeys): the same
    form sent again (a reload) creates nothing. Expires after a day."""
    return f"{PREFIX}:api-key-form:{form_id}"


def webhook_form(form_id: str) -> str:
    """String ``<endpoint id>|<fingerprint of the secret made>|<actor>``: what a console form
    registering an endpoint or rotating its secret did and who sent it (gateway.webhooks,
    gateway.apikeys.claim_form; the id is empty while that sending is at work): the same form
    sent again changes nothing. Expires after a day."""
    return f"{PREFIX}:webhook-form:{form_id}"


def job_lock(name: str) -> str:
    """Held by the process running a periodic job (gateway.jobs); expires after its interval."""
    return f"{PREFIX}:job-lock:{name}"


def login_failures(scope: str, value: str) -> str:
    """Counter of failed console logins for one account (``scope`` "a"), one network prefix
    ("n", a salted hash) or one pair of them ("p", ``<prefix hash>:<email>``); expires with the
    lockout window (gateway.users). One key each, no hash tag: nothing touches two at once."""
    return f"{PREFIX}:login-fail:{scope}:{value}"


def console_session(session_id: str) -> str:
    """A signed-in console session (its random id, kept in the session cookie) -> the account's
    email; deleted when it signs out, expires at the end of the working day (gateway.users)."""
    return f"{PREFIX}:console-session:{session_id}"


# -- webhooks (gateway.webhooks) -------------------------------------------------------------------

WEBHOOKS = f"{PREFIX}:webhooks"  # hash endpoint id -> JSON record (url, events, secret...)
WEBHOOK_LEASE = f"{PREFIX}:webhook-lease"  # string: the process delivering webhooks now


class WebhookKeys:
    """Key names of one webhook endpoint, under the hash tag ``{w<id>}`` (one cluster slot)."""

    __slots__ = ("cursors", "deliveries", "failed", "pending", "retry")

    def __init__(self, endpoint_id: str) -> None:
        tag = f"{PREFIX}:{{w{endpoint_id}}}"
        #: hash campaign id -> the last outbox stream id handled for this endpoint
        self.cursors = f"{tag}:cursors"
        #: hash event id -> JSON of an event not yet delivered (body, attempts, status)
        self.pending = f"{tag}:pending"
        #: sorted set event id -> when its next attempt is due
        self.retry = f"{tag}:retry"
        #: sorted set event id -> when it failed for good (the dead letters; payload in pending)
        self.failed = f"{tag}:failed"
        #: stream of delivery attempts (the delivery log), capped
        self.deliveries = f"{tag}:deliveries"


def webhook_keys(endpoint_id: str) -> WebhookKeys:
    return WebhookKeys(endpoint_id)
