"""Campaigns: what marketing configures, validated at save time, cached for the click path."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
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
    field_validator,
    model_validator,
)

from gateway import logos, posters
from gateway.destinations import Destination, InvalidDestination, normalise_destination
from gateway.errors import ApiError, FieldErrors
from gateway.fonts import FontCatalog
from gateway.store import keys
from gateway.store.scripts import script

#: Documented shape of a destination; the full rules live in gateway.destinations.
URL_SCHEMA: dict[str, Any] = {"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class RewardSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: Annotated[
        int, Field(ge=1, le=1_000_000_000, description="Units credited per verified conversion")
    ]
    budget_total: Annotated[
        int, Field(ge=0, le=10**15, description="Units the campaign may spend in all")
    ]
    max_per_referrer: Annotated[int | None, Field(ge=1, le=10**15)] = None
    max_per_day: Annotated[int | None, Field(ge=1, le=10**15)] = None


#: A timestamp with a timezone, given as an ISO 8601 string (numbers are refused: seconds or
#: milliseconds would be a guess).
Timestamp = Annotated[AwareDatetime, Field(strict=False)]


def _iso_string(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string with a timezone")
    return value


class PosterSpec(BaseModel):
    """What the share poster says; Chinese by default, so rendered with a CJK font."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    title: Annotated[str, Field(min_length=1, max_length=40)]
    text: Annotated[str, Field(max_length=200)] = ""
    #: A font family installed on the server, or "auto" (the first CJK font found).
    font: Annotated[str, Field(min_length=1, max_length=100)] = "auto"


class _CampaignFields(BaseModel):
    # strict: "30" is not 30 and 1.0 is not 1; the API says what it takes.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    destination_url: Annotated[
        str, Field(min_length=1, max_length=2000, json_schema_extra=URL_SCHEMA)
    ]
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None

    link_ttl_days: Annotated[int, Field(ge=1, le=3650)] = 30
    reward: RewardSpec | None = None
    #: Text people share with the link ("{url}" is replaced by the link).
    share_text: Annotated[str | None, Field(max_length=300)] = None
    poster: PosterSpec | None = None
    #: The campaign's logo for QR codes and posters: a base64 PNG or JPEG, at most 256 KiB.
    logo: Annotated[str | None, Field(max_length=350_000)] = None

    _timestamps = field_validator("starts_at", "ends_at", mode="before")(_iso_string)

    @model_validator(mode="after")
    def _window(self) -> _CampaignFields:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class CampaignCreate(_CampaignFields):
    slug: Annotated[str, Field(pattern=SLUG_PATTERN, description="Lowercase letters, digits, '-'")]


class CampaignPatch(BaseModel):
    """Every field optional; ``action`` pauses, resumes or ends the campaign."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    action: Literal["pause", "resume", "end"] | None = None
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    destination_url: Annotated[
        str | None, Field(min_length=1, max_length=2000, json_schema_extra=URL_SCHEMA)
    ] = None
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None

    link_ttl_days: Annotated[int | None, Field(ge=1, le=3650)] = None
    reward: RewardSpec | None = None
    #: Text people share with the link ("{url}" is replaced by the link).
    share_text: Annotated[str | None, Field(max_length=300)] = None
    poster: PosterSpec | None = None
    #: The campaign's logo for QR codes and posters: a base64 PNG or JPEG, at most 256 KiB.
    logo: Annotated[str | None, Field(max_length=350_000)] = None

    _timestamps = field_validator("starts_at", "ends_at", mode="before")(_iso_string)

    @field_validator("name", "destination_url", "link_ttl_days")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value


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

    def public(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["state"] = self.state_at(time.time())
        return data


@dataclass(frozen=True, slots=True)
class ClickView:
    """What the click path needs of a campaign, precomputed once per campaign version."""

    campaign: Campaign
    destination: Destination
    link_ttl_seconds: int
    starts_at: float | None
    ends_at: float | None

    @classmethod
    def of(cls, campaign: Campaign) -> ClickView:
        return cls(
            campaign=campaign,
            destination=Destination(campaign.destination_url, campaign.destination_host),
            link_ttl_seconds=campaign.link_ttl_days * 86400,
            starts_at=campaign.starts_at.timestamp() if campaign.starts_at else None,
            ends_at=campaign.ends_at.timestamp() if campaign.ends_at else None,
        )


class CampaignService:
    def __init__(
        self,
        store: Any,
        destination_hosts: tuple[str, ...] = (),
        fonts: FontCatalog | None = None,
    ) -> None:
        self._redis = store
        self._destination_hosts = destination_hosts
        self.fonts = fonts or FontCatalog()
        self._views: dict[int, tuple[int, ClickView]] = {}
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

    def list(self) -> list[Campaign]:
        ids = sorted(int(v) for v in self._redis.hvals(keys.CAMPAIGN_SLUGS))
        pipe = self._redis.pipeline(transaction=False)
        for campaign_id in ids:
            pipe.hget(keys.campaign_keys(campaign_id).config, "json")
        return [Campaign.model_validate_json(raw) for raw in pipe.execute() if raw is not None]

    def iter_ids(self) -> Iterator[int]:
        for value in self._redis.hvals(keys.CAMPAIGN_SLUGS):
            yield int(value)

    # -- click path cache ----------------------------------------------------------------------

    def cached_view(self, campaign_id: int) -> ClickView | None:
        """The last loaded view of a campaign, without touching the store (None if never loaded)."""
        entry = self._views.get(campaign_id)
        return entry[1] if entry else None

    def cached_version(self, campaign_id: int) -> int:
        entry = self._views.get(campaign_id)
        return entry[0] if entry else 0

    def load_view(self, campaign_id: int, client: Any | None = None) -> ClickView | None:
        raw = (client or self._redis).hmget(keys.campaign_keys(campaign_id).config, "json", "ver")
        if raw[0] is None:
            self._views.pop(campaign_id, None)
            return None
        view = ClickView.of(Campaign.model_validate_json(raw[0]))
        with self._lock:
            self._views[campaign_id] = (int(raw[1] or 0), view)
        return view

    # -- writes ------------------------------------------------------------------------------

    def create(self, data: Mapping[str, Any], actor: str) -> Campaign:
        spec = _validate(CampaignCreate, data)
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
        self._redis.hset(ck.config, mapping={"json": campaign.model_dump_json(), "ver": 1})
        if not self._redis.hsetnx(keys.CAMPAIGN_SLUGS, spec.slug, campaign_id):
            self._redis.delete(ck.config, ck.logo)
            raise ApiError(
                409, "slug_taken", f"a campaign with slug {spec.slug!r} exists", field="slug"
            )
        return campaign

    def update(self, slug: str, data: Mapping[str, Any], actor: str) -> Campaign:
        patch = _validate(CampaignPatch, data)
        campaign = self.require(slug)
        changes: dict[str, Any] = patch.model_dump(exclude_unset=True, exclude={"action"})
        for model_field in ("reward", "poster"):  # keep the models, not their dicts
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
        if patch.action is not None:
            changes["status"] = _apply_action(campaign, patch.action)
        updated = campaign.model_copy(update=changes)
        if updated.starts_at and updated.ends_at and updated.ends_at <= updated.starts_at:
            raise ApiError(
                400,
                "validation_failed",
                "invalid campaign",
                fields={"ends_at": "must be after starts_at"},
            )
        if "poster" in changes:
            self._check_poster(updated.poster)
        updated = updated.model_copy(
            update={
                "updated_at": datetime.now(UTC),
                "updated_by": actor,
                "version": campaign.version + 1,
            }
        )
        if new_logo:
            saved = logos.save_with_logo(
                self._redis, campaign.id, updated.model_dump_json(), campaign.version, logo
            )
        else:
            saved = script("save_config")(
                self._redis,
                [keys.campaign_keys(campaign.id).config],
                [updated.model_dump_json(), campaign.version],
            )
        if not saved:
            raise ApiError(409, "edit_conflict", "the campaign changed while saving; retry")
        return updated

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


def _apply_action(campaign: Campaign, action: str) -> CampaignStatus:
    if campaign.status is CampaignStatus.ENDED:
        raise ApiError(
            409, "campaign_ended", "an ended campaign cannot be paused or resumed", field="action"
        )
    return {
        "pause": CampaignStatus.PAUSED,
        "resume": CampaignStatus.ACTIVE,
        "end": CampaignStatus.ENDED,
    }[action]


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], data: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            400, "validation_failed", "invalid campaign", fields=field_errors(exc)
        ) from None


def field_errors(exc: ValidationError) -> FieldErrors:
    fields: FieldErrors = {}
    for error in exc.errors(include_url=False):
        name = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        fields.setdefault(name, message.removeprefix("Value error, "))
    return fields
