"""Campaigns: what marketing configures, validated at save time, cached for the click path."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from detectors.engine import Policy
from gateway import logos, posters
from gateway.campaigncache import CampaignDiskCache
from gateway.copycheck import CopyWarning, check_copy
from gateway.destinations import Destination, InvalidDestination, normalise_destination
from gateway.errors import ApiError, FieldErrors
from gateway.fonts import FontCatalog
from gateway.platforms import PLATFORM_KEYS, Platform, Strategy
from gateway.store import keys
from gateway.store.scripts import script
from gateway.validation import FontName, Name, Note, PosterText, PosterTitle, ShareText

#: Documented shape of a destination; the full rules live in gateway.destinations.
URL_SCHEMA: dict[str, Any] = {"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
#: A sharer's or participant's external id.
PERSON_PATTERN = r"^[A-Za-z0-9._:@+-]{1,128}$"
#: What each pattern accepts, in words: pydantic's own message quotes the regular expression.
PATTERN_WORDS = {
    SLUG_PATTERN: (
        "must be 1 to 64 lowercase ASCII letters (a-z), digits (0-9) or '-', not starting or "
        "ending with '-'"
    ),
    PERSON_PATTERN: "must be 1 to 128 ASCII letters (A-Z, a-z), digits (0-9) or . _ : @ + -",
}
#: A person's id in words, where the API names the field itself (the same rule: ASCII only,
#: so "letters" alone would promise 'é' and '张' too).
PERSON_WORDS = "1-128 characters: ASCII letters (A-Z, a-z), digits (0-9) and . _ : @ + -"


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


#: Why a cap is refused (the console translates it: gateway.console.messages).
CAP_BELOW_AMOUNT = "is counted in units and must be at least amount (one reward)"


def _check_caps(reward: RewardSpec | None) -> None:
    """Caps count units, as the budget does: one below the amount would refuse every reward.
    (Checked on input, not in the model: campaigns saved before the check must still load.)"""
    if reward is None:
        return
    fields = {
        f"reward.{name}": CAP_BELOW_AMOUNT
        for name in ("max_per_referrer", "max_per_day")
        if (cap := getattr(reward, name)) is not None and cap < reward.amount
    }
    if fields:
        raise ApiError(400, "validation_failed", "invalid campaign", fields=fields)


class RewardSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: Annotated[
        int, Field(ge=1, le=1_000_000_000, description="Units credited per verified conversion")
    ]
    budget_total: Annotated[
        int, Field(ge=0, le=10**15, description="Units the campaign may spend in all")
    ]
    max_per_referrer: Annotated[
        int | None,
        Field(ge=1, le=10**15, description="Units one sharer may earn in all (not rewards)"),
    ] = None
    max_per_day: Annotated[
        int | None,
        Field(ge=1, le=10**15, description="Units the campaign may spend in one day (UTC)"),
    ] = None


#: A timestamp with a timezone, given as an ISO 8601 string (numbers are refused: seconds or
#: milliseconds would be a guess).
Timestamp = Annotated[AwareDatetime, Field(strict=False)]


def _iso_string(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string with a timezone")
    return value


class FraudPolicy(BaseModel):
    """Score thresholds for this campaign's decisions (see detectors.engine.decide)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    deny_credit_at: Annotated[float, Field(gt=0, le=1)] = 0.5
    challenge_at: Annotated[float, Field(gt=0, le=1)] = 0.85
    block_at: Annotated[float, Field(gt=0, le=1)] = 0.95

    @model_validator(mode="after")
    def _ordered(self) -> FraudPolicy:
        if not self.deny_credit_at <= self.challenge_at <= self.block_at:
            raise ValueError("thresholds must satisfy deny_credit_at <= challenge_at <= block_at")
        return self

    def policy(self) -> Policy:
        return Policy(self.deny_credit_at, self.challenge_at, self.block_at)


class PosterSpec(BaseModel):
    """What the share poster says; Chinese by default, so rendered with a CJK font."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: PosterTitle
    text: PosterText = ""
    #: A font family installed on the server, or "auto" (the first CJK font found).
    font: FontName = "auto"


class _CampaignFields(BaseModel):
    # strict: "30" is not 30 and 1.0 is not 1; the API says what it takes.
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name
    destination_url: Annotated[
        str, Field(min_length=1, max_length=2000, json_schema_extra=URL_SCHEMA)
    ]
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None

    link_ttl_days: Annotated[int, Field(ge=1, le=3650)] = 30
    reward: RewardSpec | None = None
    #: Text people share with the link ("{url}" is replaced by the link).
    share_text: ShareText | None = None
    poster: PosterSpec | None = None
    #: The campaign's logo for QR codes and posters: a base64 PNG or JPEG, at most 256 KiB.
    logo: Annotated[str | None, Field(max_length=350_000)] = None
    fraud_policy: FraudPolicy | None = None

    _timestamps = field_validator("starts_at", "ends_at", mode="before")(_iso_string)

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, ends_at: datetime | None, info: ValidationInfo) -> datetime | None:
        # On ends_at, as an edit reports it (a model validator's error names no field).
        starts_at = info.data.get("starts_at")
        if starts_at and ends_at and ends_at <= starts_at:
            raise ValueError("must be after starts_at")
        return ends_at


class CampaignCreate(_CampaignFields):
    slug: Annotated[
        str,
        Field(pattern=SLUG_PATTERN, description="Lowercase ASCII letters (a-z), digits (0-9), '-'"),
    ]


class CampaignPatch(BaseModel):
    """Every field optional; ``action`` pauses, resumes or ends the campaign."""

    model_config = ConfigDict(extra="forbid", strict=True)

    action: Literal["pause", "resume", "end"] | None = None
    name: Name | None = None
    destination_url: Annotated[
        str | None, Field(min_length=1, max_length=2000, json_schema_extra=URL_SCHEMA)
    ] = None
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None

    link_ttl_days: Annotated[int | None, Field(ge=1, le=3650)] = None
    reward: RewardSpec | None = None
    #: Text people share with the link ("{url}" is replaced by the link).
    share_text: ShareText | None = None
    poster: PosterSpec | None = None
    #: The campaign's logo for QR codes and posters: a base64 PNG or JPEG, at most 256 KiB.
    logo: Annotated[str | None, Field(max_length=350_000)] = None
    fraud_policy: FraudPolicy | None = None

    _timestamps = field_validator("starts_at", "ends_at", mode="before")(_iso_string)

    @field_validator("name", "destination_url", "link_ttl_days")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value


PlatformStatus = Literal["ok", "blocked"]
StrategyName = Literal["redirect", "guide", "qr_first"]


class PlatformUpdate(BaseModel):
    """``PUT /campaigns/<slug>/platforms/<platform>``: block status and an optional strategy."""

    model_config = ConfigDict(extra="forbid", strict=True)

    status: PlatformStatus
    note: Note = ""
    #: Overrides the platform's default strategy for this campaign; null restores the default.
    strategy: StrategyName | None = None


class LinkRequest(BaseModel):
    """``POST /campaigns/<slug>/links``: a sharer, and where they will share (optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    referrer: Annotated[str, Field(pattern=PERSON_PATTERN)]
    #: A platform key (see gateway.platforms); decides whether to share the link or the QR poster.
    platform: Annotated[str | None, Field(max_length=32)] = None

    @field_validator("platform")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in PLATFORM_KEYS:
            raise ValueError("unknown platform; see GET /api/v1/campaigns/<slug>/platforms")
        return value


class PlatformPolicy(BaseModel):
    """A platform's status for one campaign, with who set it and when."""

    status: PlatformStatus = "ok"
    note: str = ""
    strategy: StrategyName | None = None
    set_by: str = ""
    set_at: datetime | None = None


class Campaign(BaseModel):
    """The stored campaign document."""

    model_config = ConfigDict(extra="ignore")

    id: int
    slug: str
    name: str
    destination_url: str
    destination_host: str
    status: CampaignStatus = CampaignStatus.ACTIVE
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    link_ttl_days: int = 30
    reward: RewardSpec | None = None
    share_text: str | None = None
    poster: PosterSpec | None = None
    #: SHA-256 of the logo image (kept under its own key); None when the campaign has none.
    logo_sha256: str | None = None
    #: Decision thresholds; None means the defaults (detectors.engine.Policy).
    fraud_policy: FraudPolicy | None = None
    #: Per platform key (see gateway.platforms): block status and strategy set by staff.
    platforms: dict[str, PlatformPolicy] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    created_by: str = ""
    updated_by: str = ""
    version: int = 1

    def state_at(self, now: float) -> str:
        """``live``, ``paused``, ``not_started`` or ``ended`` at unix time ``now``."""
        if self.status is CampaignStatus.ENDED:
            return "ended"
        if self.ends_at is not None and now >= self.ends_at.timestamp():
            return "ended"
        if self.status is CampaignStatus.PAUSED:
            return "paused"
        if self.starts_at is not None and now < self.starts_at.timestamp():
            return "not_started"
        return "live"

    def copy_warnings(self) -> list[CopyWarning]:
        poster = self.poster
        return check_copy(
            {
                "name": self.name,
                "share_text": self.share_text,
                "poster.title": poster.title if poster else None,
                "poster.text": poster.text if poster else None,
            }
        )

    def blocked_on(self, platform: str) -> bool:
        policy = self.platforms.get(platform)
        return policy is not None and policy.status == "blocked"

    def public(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["state"] = self.state_at(time.time())
        data["copy_warnings"] = [w.public() for w in self.copy_warnings()]
        return data


@dataclass(frozen=True, slots=True)
class ClickView:
    """What the click path needs of a campaign, precomputed once per campaign version."""

    campaign: Campaign
    destination: Destination
    link_ttl_seconds: int
    starts_at: float | None
    ends_at: float | None
    #: Platform key -> the strategy this campaign uses there, where it is not the default.
    strategies: Mapping[str, Strategy]
    policy: Policy

    @classmethod
    def of(cls, campaign: Campaign) -> ClickView:
        return cls(
            campaign=campaign,
            destination=Destination(campaign.destination_url, campaign.destination_host),
            link_ttl_seconds=campaign.link_ttl_days * 86400,
            starts_at=campaign.starts_at.timestamp() if campaign.starts_at else None,
            ends_at=campaign.ends_at.timestamp() if campaign.ends_at else None,
            strategies={
                key: effective_strategy(policy, None)
                for key, policy in campaign.platforms.items()
                if policy.status == "blocked" or policy.strategy is not None
            },
            policy=campaign.fraud_policy.policy() if campaign.fraud_policy else Policy(),
        )

    def strategy_for(self, platform: Platform) -> Strategy:
        return self.strategies.get(platform.key, platform.strategy)


def effective_strategy(policy: PlatformPolicy | None, default: Strategy | None) -> Strategy:
    """A blocked platform leads with the QR code; otherwise staff's choice, else the default."""
    if policy is not None and policy.status == "blocked":
        return Strategy.QR_FIRST
    if policy is not None and policy.strategy is not None:
        return Strategy(policy.strategy)
    return default or Strategy.REDIRECT


#: Seconds a campaign's view may be old for answers without a round trip of their own (the
#: click path's round trip notices every change at once).
RECENT_VIEW = 5.0


class CampaignService:
    def __init__(
        self,
        store: Any,
        destination_hosts: tuple[str, ...] = (),
        fonts: FontCatalog | None = None,
        disk: CampaignDiskCache | None = None,
    ) -> None:
        self._redis = store
        self._destination_hosts = destination_hosts
        self.fonts = fonts or FontCatalog()
        #: The views loaded, kept on this machine's disk for a worker that starts in an outage.
        self.disk = disk
        #: How old a view may be for answers without a round trip of their own.
        self.recent_seconds = RECENT_VIEW
        #: campaign id -> (version, view, when loaded: time.monotonic())
        self._views: dict[int, tuple[int, ClickView, float]] = {}
        self._lock = threading.Lock()

    # -- reads -------------------------------------------------------------------------------

    def get(self, slug: str) -> Campaign | None:
        raw_id = self._redis.hget(keys.CAMPAIGN_SLUGS, slug)
        if raw_id is None:
            return None
        return self.get_by_id(int(raw_id))

    def require(self, slug: str) -> Campaign:
        campaign = self.get(slug)
        if campaign is None:
            raise ApiError(404, "campaign_not_found", f"no campaign {slug!r}")
        return campaign

    def get_by_id(self, campaign_id: int) -> Campaign | None:
        raw = self._redis.hget(keys.campaign_keys(campaign_id).config, "json")
        return None if raw is None else Campaign.model_validate_json(raw)

    def of_ids(self, campaign_ids: Iterable[int]) -> list[Campaign]:
        """The campaigns of ``campaign_ids`` that exist, oldest first, in one round trip."""
        ids = sorted(set(campaign_ids))
        if not ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for campaign_id in ids:
            pipe.hget(keys.campaign_keys(campaign_id).config, "json")
        return [Campaign.model_validate_json(raw) for raw in pipe.execute() if raw is not None]

    def list(self) -> list[Campaign]:
        return self.of_ids(int(v) for v in self._redis.hvals(keys.CAMPAIGN_SLUGS))

    def iter_ids(self) -> Iterator[int]:
        for value in self._redis.hvals(keys.CAMPAIGN_SLUGS):
            yield int(value)

    # -- click path cache ----------------------------------------------------------------------

    def cached_view(self, campaign_id: int) -> ClickView | None:
        """The last loaded view of a campaign, without touching the store (None if never loaded)."""
        entry = self._views.get(campaign_id)
        return entry[1] if entry else None

    def recent_view(self, campaign_id: int) -> ClickView | None:
        """The view loaded at most ``recent_seconds`` ago, else loaded now (one read), for the
        answers that have no store round trip of their own to notice a change (a crawler's
        preview, a challenge's answer). Raises RedisError when a load is needed and fails."""
        entry = self._views.get(campaign_id)
        if entry is not None and time.monotonic() - entry[2] < self.recent_seconds:
            return entry[1]
        return self.load_view(campaign_id)

    def cached_version(self, campaign_id: int) -> int:
        entry = self._views.get(campaign_id)
        return entry[0] if entry else 0

    def load_view(self, campaign_id: int, client: Any | None = None) -> ClickView | None:
        raw = (client or self._redis).hmget(keys.campaign_keys(campaign_id).config, "json", "ver")
        if raw[0] is None:
            self._views.pop(campaign_id, None)
            if self.disk is not None:
                self.disk.forget(campaign_id)
            return None
        version = int(raw[1] or 0)
        view = ClickView.of(Campaign.model_validate_json(raw[0]))
        with self._lock:
            self._views[campaign_id] = (version, view, time.monotonic())
        if self.disk is not None:
            self.disk.save(campaign_id, version, raw[0])
        return view

    def last_known_view(self, campaign_id: int) -> ClickView | None:
        """The view this machine last loaded, from its disk, for a worker that cannot reach the
        store and never loaded the campaign itself; kept in memory as if loaded (the next round
        trip that works notices a newer version). None when the disk has none (or one an older
        refgate wrote that no longer reads)."""
        if self.disk is None:
            return None
        kept = self.disk.load(campaign_id)
        if kept is None:
            return None
        version, document = kept
        try:
            view = ClickView.of(Campaign.model_validate_json(document))
        except ValueError:  # pydantic's ValidationError is one
            return None
        with self._lock:
            self._views.setdefault(campaign_id, (version, view, time.monotonic()))
        return view

    # -- writes ------------------------------------------------------------------------------

    def problems(self, data: Mapping[str, Any], *, create: bool) -> FieldErrors:
        """Every field error that ``create`` (or ``update``) would refuse ``data`` for, at once
        and without writing: a form shows them together, where the writes stop at the first
        stage that fails (the fields' types, then the destination)."""
        fields: FieldErrors = {}
        try:
            validate(CampaignCreate if create else CampaignPatch, data)
        except ApiError as exc:
            fields.update(exc.fields or {"body": exc.message})
        url = data.get("destination_url")
        if isinstance(url, str) and "destination_url" not in fields:
            try:
                self._destination(url)
            except ApiError as exc:
                fields.update(exc.fields or {})
        return fields

    def create(self, data: Mapping[str, Any], actor: str) -> Campaign:
        spec = validate(CampaignCreate, data)
        _check_caps(spec.reward)
        destination = self._destination(spec.destination_url)
        logo = logos.check_logo(spec.logo) if spec.logo is not None else None
        self._check_poster(spec.poster)
        if self._redis.hexists(keys.CAMPAIGN_SLUGS, spec.slug):
            raise ApiError(
                409, "slug_taken", f"a campaign with slug {spec.slug!r} exists", field="slug"
            )
        now = datetime.now(UTC)
        campaign_id = int(self._redis.incr(keys.CAMPAIGN_SEQ))
        campaign = Campaign(
            id=campaign_id,
            slug=spec.slug,
            name=spec.name,
            destination_url=destination.url,
            destination_host=destination.host,
            starts_at=spec.starts_at,
            ends_at=spec.ends_at,
            link_ttl_days=spec.link_ttl_days,
            reward=spec.reward,
            share_text=spec.share_text,
            fraud_policy=spec.fraud_policy,
            poster=spec.poster,
            logo_sha256=logo.sha256 if logo else None,
            created_at=now,
            updated_at=now,
            created_by=actor,
            updated_by=actor,
        )
        ck = keys.campaign_keys(campaign_id)
        # Write the document before publishing the slug, so a published slug always resolves;
        # a lost race on the slug removes the unpublished document again.
        if logo is not None:
            self._redis.set(ck.logo, logo.data)
        # A new campaign's flags are indexed by amount at stake from the first one on.
        self._redis.hset(ck.counters, keys.STAKE_INDEXED, 1)
        # And its rewards by status (convert.lua and settle_reward.lua keep them).
        self._redis.hset(ck.counters, keys.REWARD_STATUS_INDEXED, 1)
        if campaign_id == 1:
            # The store's first campaign: nobody is in a campaign yet, so the people lookup's
            # index is whole from here on (mint.lua's callers keep it).
            self._redis.set(keys.PEOPLE_INDEXED, 1)
        self._redis.hset(ck.config, mapping={"json": campaign.model_dump_json(), "ver": 1})
        if not self._redis.hsetnx(keys.CAMPAIGN_SLUGS, spec.slug, campaign_id):
            self._redis.delete(ck.config, ck.logo)
            raise ApiError(
                409, "slug_taken", f"a campaign with slug {spec.slug!r} exists", field="slug"
            )
        return campaign

    def update(
        self,
        slug: str,
        data: Mapping[str, Any],
        actor: str,
        *,
        expected_version: int | None = None,
    ) -> Campaign:
        """Apply ``data``; with ``expected_version`` (the version a form was opened at), a
        campaign changed since is a 409 rather than overwritten with older values."""
        patch = validate(CampaignPatch, data)
        campaign = self.require(slug)
        if expected_version is not None and campaign.version != expected_version:
            raise ApiError(
                409,
                "edit_conflict",
                "the campaign was changed by someone else since this form was opened; reload "
                "it to see their changes",
            )
        changes: dict[str, Any] = patch.model_dump(exclude_unset=True, exclude={"action"})
        for model_field in ("reward", "poster", "fraud_policy"):  # models, not their dicts
            if model_field in changes:
                changes[model_field] = getattr(patch, model_field)
        # The logo's bytes go under their own key; the document keeps their digest.
        new_logo = "logo" in changes
        logo = logos.check_logo(patch.logo) if patch.logo is not None else None
        if new_logo:
            del changes["logo"]
            changes["logo_sha256"] = logo.sha256 if logo else None
        if "destination_url" in changes:
            destination = self._destination(changes["destination_url"])
            changes["destination_url"] = destination.url
            changes["destination_host"] = destination.host
        updated = campaign.model_copy(update=changes)
        if patch.action is not None:  # on the edited dates: a new ends_at may reopen it
            status = _apply_action(updated, patch.action, time.time())
            updated = updated.model_copy(update={"status": status})
        if "reward" in changes:
            _check_caps(updated.reward)
            self._check_committed(campaign, updated.reward)
        if updated.starts_at and updated.ends_at and updated.ends_at <= updated.starts_at:
            raise ApiError(
                400,
                "validation_failed",
                "invalid campaign",
                fields={"ends_at": "must be after starts_at"},
            )
        if "poster" in changes:
            self._check_poster(updated.poster)
        if new_logo:
            return self._save(campaign, updated, actor, logo=(logo,))
        return self._save(campaign, updated, actor)

    def _check_committed(self, campaign: Campaign, reward: RewardSpec | None) -> None:
        """A budget is never set below what is already spent or held: the ledger cannot take
        back a payment to fit it, and the summary (spent + held + left = total) would stop
        adding up. Lowering it to exactly that much stops new rewards."""
        raw = self._redis.hmget(keys.campaign_keys(campaign.id).budget, "spent", "held")
        committed = sum(int(value or 0) for value in raw)
        if committed == 0:
            return
        if reward is None:
            raise ApiError(
                409,
                "budget_committed",
                "rewards are spent or held",
                fields={
                    "reward": f"{committed} units are already spent or held: to stop new "
                    f"rewards, set budget_total to {committed}"
                },
            )
        if reward.budget_total < committed:
            raise ApiError(
                409,
                "budget_committed",
                "rewards are spent or held",
                fields={
                    "reward.budget_total": f"must be at least {committed}: that much is "
                    "already spent or held"
                },
            )

    def set_platform(
        self, slug: str, platform: str, data: Mapping[str, Any], actor: str
    ) -> Campaign:
        """Set a platform's block status (and strategy) for a campaign; kept with who and when."""
        update = validate(PlatformUpdate, data, "invalid platform status")
        campaign = self.require(slug)
        policy = PlatformPolicy(
            status=update.status,
            note=update.note,
            strategy=update.strategy,
            set_by=actor,
            set_at=datetime.now(UTC),
        )
        platforms = {**campaign.platforms, platform: policy}
        return self._save(campaign, campaign.model_copy(update={"platforms": platforms}), actor)

    def _save(
        self,
        before: Campaign,
        after: Campaign,
        actor: str,
        *,
        logo: tuple[logos.Logo | None] | None = None,
    ) -> Campaign:
        """Compare-and-set on the version: a concurrent edit is a 409, never a lost update.
        ``logo`` (a 1-tuple: the new logo or None to remove it) is saved in the same step."""
        after = after.model_copy(
            update={
                "updated_at": datetime.now(UTC),
                "updated_by": actor,
                "version": before.version + 1,
            }
        )
        if logo is not None:
            saved = logos.save_with_logo(
                self._redis, before.id, after.model_dump_json(), before.version, logo[0]
            )
        else:
            saved = script("save_config")(
                self._redis,
                [keys.campaign_keys(before.id).config],
                [after.model_dump_json(), before.version],
            )
        if not saved:
            raise ApiError(409, "edit_conflict", "the campaign changed while saving; retry")
        return after

    def _check_poster(self, poster: PosterSpec | None) -> None:
        """A poster that cannot be drawn is refused now, not printed as empty boxes later.
        (Without one the name stands in, best effort: a name alone never blocks a campaign.)"""
        if poster is not None:
            posters.check_font(self.fonts, poster.font, poster.title, poster.text)

    def _destination(self, url: str) -> Destination:
        try:
            return normalise_destination(url, self._destination_hosts)
        except InvalidDestination as exc:
            raise ApiError(
                400, "validation_failed", "invalid campaign", fields={"destination_url": exc.reason}
            ) from None


def _apply_action(campaign: Campaign, action: str, now: float) -> CampaignStatus:
    if action == "end":
        return CampaignStatus.ENDED  # ending an ended campaign changes nothing
    if campaign.status is CampaignStatus.ENDED:
        raise ApiError(
            409, "campaign_ended", "an ended campaign cannot be paused or resumed", field="action"
        )
    if campaign.state_at(now) == "ended":
        raise ApiError(
            409,
            "campaign_ended",
            "the campaign ended at its ends_at: move ends_at later to pause or resume it",
            field="action",
        )
    return CampaignStatus.PAUSED if action == "pause" else CampaignStatus.ACTIVE


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Mapping[str, Any], message: str = "invalid campaign") -> M:
    """Validate API input against a model; a 400 naming each bad field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "validation_failed", message, fields=field_errors(exc)) from None


def field_errors(exc: ValidationError) -> FieldErrors:
    fields: FieldErrors = {}
    for error in exc.errors(include_url=False):
        name = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "string_pattern_mismatch":
            message = PATTERN_WORDS.get(error.get("ctx", {}).get("pattern", ""), message)
        fields.setdefault(name, message.removeprefix("Value error, "))
    return fields
