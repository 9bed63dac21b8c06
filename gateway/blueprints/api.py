"""The JSON API for staff tools and marketing systems, under ``/api/v1`` with Bearer API keys."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import orjson
from flask import Blueprint, g, jsonify, request
from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from gateway.apikeys import ApiKey, Role
from gateway.campaigns import (
    PERSON_WORDS,
    Campaign,
    CampaignStatus,
    LinkRequest,
    effective_strategy,
    validate,
)
from gateway.conversions import ConversionRequest
from gateway.errors import ApiError
from gateway.flags import FlagDecision, check_filters
from gateway.inspect import InspectRequest, inspect_request
from gateway.openapi import openapi_document
from gateway.platforms import PLATFORM_KEYS
from gateway.platforms import platform as known_platform
from gateway.platformwatch import clear_alert, open_alerts
from gateway.services import services
from gateway.sharelinks import REFERRER_PATTERN
from gateway.sharematerial import share_material
from gateway.stats import campaign_stats
from gateway.validation import MAX_OFFSET, ascii_digits

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

F = TypeVar("F", bound=Callable[..., Any])

READERS = (Role.MARKETING, Role.RISK)
MARKETING = (Role.MARKETING,)


def roles(*allowed: Role) -> Callable[[F], F]:
    """Require a valid API key whose role is one of ``allowed`` (admin is always allowed)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = _authenticate()
            if key.role is not Role.ADMIN and key.role not in allowed:
                raise ApiError(403, "forbidden", f"the {key.role.value} role cannot do this")
            g.api_key = key
            if request.method not in ("GET", "HEAD"):
                # No write takes query parameters: one sent is a mistake (a field meant for
                # the body), refused rather than ignored. Reads list what they take.
                _only_args()
            return view(*args, **kwargs)

        wrapper.roles = (Role.ADMIN, *allowed)  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def _authenticate() -> ApiKey:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send an API key: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": 'Bearer realm="refgate"'},
        )
    key = services().api_keys.authenticate(token.strip())
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "unknown or disabled API key",
            headers={"WWW-Authenticate": 'Bearer realm="refgate", error="invalid_token"'},
        )
    return key


def actor() -> str:
    key: ApiKey = g.api_key
    return key.actor


def json_body(*, allow_empty: bool = False) -> dict[str, Any]:
    """The request's JSON object; with ``allow_empty``, no body at all means ``{}`` (every
    field has a default), while a body that is not a JSON object is still refused."""
    body = request.get_data(cache=True)
    if allow_empty and not body:
        return {}
    # Sent chunked (no Content-Length), the body is cut at the limit rather than refused
    # (werkzeug's stream stops there): more behind it means it was too large, which is the
    # documented 413, not a 400 calling a well-formed body broken JSON.
    limit = request.max_content_length
    if (
        request.content_length is None
        and limit is not None
        and len(body) >= limit
        and request.environ["wsgi.input"].read(1)
    ):
        raise ApiError(
            413, "request_entity_too_large", f"the request body is larger than {limit} bytes"
        )
    message = "the request body must be a JSON object"
    if not request.is_json:
        raise ApiError(400, "invalid_json", message + ", sent with Content-Type: application/json")
    # orjson, strict JSON: NaN and Infinity (which Python's json takes, and no threshold or
    # budget can be) are refused, and nesting too deep is an error rather than a RecursionError.
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", message)
    duplicate = duplicate_key(body)
    if duplicate is not None:
        # JSON parsers keep the last of a repeated key (orjson too) and others the first: a
        # body whose meaning depends on the parser is refused, not read one way.
        raise ApiError(
            400,
            "validation_failed",
            "a key appears twice in the request body",
            fields={duplicate: "given more than once: send each key once"},
        )
    return data


class _Pairs(list[tuple[str, Any]]):
    """An object's members in order, as sent (duplicates kept)."""


def duplicate_key(body: bytes) -> str | None:
    """The path (``reward.amount``, ``events.0``, as validation names fields) of the first key
    sent twice in one object of a JSON document already parsed strictly, or None. orjson has no
    hook for this; the standard library's ``object_pairs_hook`` sees every member."""
    try:
        document = json.loads(
            body,
            object_pairs_hook=_Pairs,
            # Only the keys matter: numbers are not converted (no digit limits, no cost).
            parse_int=lambda _: 0,
            parse_float=lambda _: 0,
        )
    except RecursionError:
        raise ApiError(400, "invalid_json", "the request body is nested too deeply") from None
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        items: list[tuple[str, Any]]
        if isinstance(value, _Pairs):
            seen: set[str] = set()
            for key, _ in value:
                if key in seen:
                    return f"{path}.{key}" if path else key
                seen.add(key)
            items = list(value)
        elif isinstance(value, list):
            items = [(str(index), item) for index, item in enumerate(value)]
        else:
            continue
        # Depth first, in document order: the first duplicate as written is named.
        stack += [(f"{path}.{key}" if path else key, item) for key, item in reversed(items)]
    return None


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    response = jsonify(exc.body())
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


@bp.errorhandler(RedisError)
def _store_unavailable(exc: RedisError) -> Response:
    """Fail closed: without the store nothing is credited, converted or changed."""
    log.warning("store unavailable for %s %s: %s", request.method, request.path, exc)
    services().metrics.store_error("api")
    response = jsonify(
        error="store_unavailable",
        message="the store is unavailable; nothing was recorded or changed, retry later",
    )
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


@bp.after_request
def _no_cache(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response


#: Writes that are not staff actions: the landing app's conversions (traffic, recorded in the
#: ledger), links minted for each sharer (a marketing system mints one per user: they would
#: push the staff's actions out of the capped log) and inspecting a request (a read sent as
#: POST).
UNAUDITED = frozenset({"api.convert", "api.mint_link", "api.inspect"})


@bp.after_request
def _audit_write(response: Response) -> Response:
    """A change made with an API key goes to the audit log, as the console's do: who (the
    key's name), what (method and route), to what (the path; for something created, its
    address, the response's Location: ``/api/v1/webhooks/<id>``, not ``/api/v1/webhooks``),
    from where, and what a view put in ``g.audit_detail`` (which fields a change named). Never
    the body: it may carry a secret."""
    key: ApiKey | None = g.get("api_key")
    if (
        key is not None
        and request.method in ("POST", "PATCH", "PUT", "DELETE")
        and 200 <= response.status_code < 300
        and request.endpoint not in UNAUDITED
    ):
        rule = request.url_rule.rule if request.url_rule is not None else request.path
        target = response.headers.get("Location") or request.path
        try:
            services().audit.record(
                key.actor,
                f"api {request.method} {rule}",
                target,
                request.remote_addr or "",
                g.get("audit_detail"),
            )
        except RedisError as exc:  # the change is made; its audit entry is what is lost
            log.warning("audit entry lost for %s %s: %s", request.method, request.path, exc)
    return response


# -- campaigns -------------------------------------------------------------------------------


@bp.post("/campaigns")
@roles(*MARKETING)
def create_campaign() -> tuple[Response, int, dict[str, str]]:
    campaign = services().campaigns.create(json_body(), actor())
    return jsonify(campaign.public()), 201, {"Location": f"/api/v1/campaigns/{campaign.slug}"}


@bp.get("/campaigns")
@roles(*READERS)
def list_campaigns() -> Response:
    _only_args()
    return jsonify(campaigns=[c.public() for c in services().campaigns.list()])


@bp.get("/campaigns/<slug>")
@roles(*READERS)
def get_campaign(slug: str) -> Response:
    _only_args()
    found = services()
    campaign = found.campaigns.require(slug)
    return jsonify({**campaign.public(), "budget": found.rewards.budget(campaign)})


@bp.patch("/campaigns/<slug>")
@roles(*MARKETING)
def update_campaign(slug: str) -> Response:
    return jsonify(services().campaigns.update(slug, json_body(), actor()).public())


@bp.get("/campaigns/<slug>/stats")
@roles(*READERS)
def get_stats(slug: str) -> Response:
    _only_args()
    found = services()
    campaign = found.campaigns.require(slug)
    return jsonify(
        {
            **campaign_stats(found.store.main, campaign),
            "tree": found.tree.stats(campaign),
            "budget": found.rewards.budget(campaign),
        }
    )


# -- share links -----------------------------------------------------------------------------


@bp.post("/campaigns/<slug>/links")
@roles(*MARKETING)
def mint_link(slug: str) -> tuple[Response, int]:
    found = services()
    campaign = found.campaigns.require(slug)
    request_ = validate(LinkRequest, json_body(), "invalid link request")
    if campaign.state_at(time.time()) == "ended":
        # Say which end: a campaign created with an ends_at already past (a wrong year) is
        # created ended, and this refusal is where its creator first learns it.
        why = (
            "was ended"
            if campaign.status is CampaignStatus.ENDED or campaign.ends_at is None
            else f"ended at its ends_at, {campaign.ends_at.isoformat()} (PATCH a later one "
            "to reopen it)"
        )
        raise ApiError(409, "campaign_ended", f"the campaign {why}; no new links")
    minted = found.links.mint(campaign, request_.referrer)
    return jsonify({**minted.public(), **share_material(campaign, minted, request_.platform)}), 201


@bp.post("/campaigns/<slug>/referrers/<referrer>/revoke")
@roles(*MARKETING, Role.RISK)
def revoke_referrer(slug: str, referrer: str) -> Response:
    found = services()
    campaign = found.campaigns.require(slug)
    generation = found.links.revoke(campaign, referrer)
    log.info("links revoked: campaign=%s referrer=%s by=%s", slug, referrer, actor())
    return jsonify(campaign=slug, referrer=referrer, revoked=True, generation=generation)


# -- platforms ---------------------------------------------------------------------------------


def _platform_entry(campaign: Campaign, key: str, alerts: dict[str, Any]) -> dict[str, Any]:
    known = known_platform(key)
    policy = campaign.platforms.get(key)
    return {
        "platform": key,
        "name": known.name,
        "in_app": known.in_app,
        "default_strategy": known.strategy.value,
        "strategy": effective_strategy(policy, known.strategy).value,
        "status": policy.status if policy else "ok",
        "note": policy.note if policy else "",
        "set_by": policy.set_by if policy else None,
        "set_at": policy.set_at.isoformat() if policy and policy.set_at else None,
        "alert": alerts.get(key),
    }


def _known_platform(key: str) -> str:
    try:
        known_platform(key)
    except KeyError:
        raise ApiError(404, "platform_not_found", f"unknown platform {key!r}") from None
    return key


@bp.get("/campaigns/<slug>/platforms")
@roles(*READERS)
def list_platforms(slug: str) -> Response:
    _only_args()
    found = services()
    campaign = found.campaigns.require(slug)
    alerts = open_alerts(found.store.main, campaign)
    return jsonify(platforms=[_platform_entry(campaign, key, alerts) for key in PLATFORM_KEYS])


@bp.put("/campaigns/<slug>/platforms/<platform>")
@roles(*MARKETING, Role.RISK)
def set_platform(slug: str, platform: str) -> Response:
    key = platform
    found = services()
    campaign = found.campaigns.set_platform(slug, _known_platform(key), json_body(), actor())
    # Staff have looked: a "possible block" alert for this platform is answered.
    clear_alert(found.store.main, campaign, key)
    log.info(
        "platform %s set to %s for %s by %s", key, campaign.platforms[key].status, slug, actor()
    )
    return jsonify(_platform_entry(campaign, key, {}))


# -- conversions, the referral tree, rewards -----------------------------------------------------


@bp.post("/conversions")
@roles(Role.CONVERSION)
def convert() -> tuple[Response, int]:
    body = validate(ConversionRequest, json_body(), "invalid conversion")
    outcome = services().conversions.convert(
        body.click_id, body.user, idempotency_key=body.idempotency_key
    )
    return jsonify(outcome.answer), 201 if outcome.new else 200


@bp.get("/campaigns/<slug>/tree/<participant>")
@roles(*READERS)
def subtree(slug: str, participant: str) -> Response:
    found = services()
    campaign = found.campaigns.require(slug)
    _only_args("depth", "limit", "cursor")
    return jsonify(
        found.tree.subtree(
            campaign,
            participant,
            depth=_int_arg("depth", 1, 1, 5),
            limit=_int_arg("limit", 50, 1, 200),
            cursor=_int_arg("cursor", 0, 0, MAX_OFFSET),
        )
    )


@bp.get("/campaigns/<slug>/ancestors/<participant>")
@roles(*READERS)
def ancestors(slug: str, participant: str) -> Response:
    _only_args()
    found = services()
    campaign = found.campaigns.require(slug)
    return jsonify(participant=participant, ancestors=found.tree.ancestors(campaign, participant))


@bp.get("/people/<person>")
@roles(*READERS)
def person_everywhere(person: str) -> Response:
    """Each campaign that knows a person (tree, links, flags, rewards): support's lookup."""
    _only_args()
    if not REFERRER_PATTERN.fullmatch(person):
        raise ApiError(
            400,
            "validation_failed",
            "invalid person",
            fields={"person": PERSON_WORDS},
        )
    found = services().people.everywhere(person)
    return jsonify(person=person, campaigns=[a.public() for a in found])


@bp.get("/rewards")
@roles(*READERS)
def list_rewards() -> Response:
    found = services()
    _only_args("campaign", "referrer", "status", "limit", "offset", "cursor")
    slug = request.args.get("campaign")
    if not slug:
        raise ApiError(400, "validation_failed", "invalid query", fields={"campaign": "required"})
    campaign = found.campaigns.require(slug)
    limit = _int_arg("limit", 100, 1, 1000)
    cursor = request.args.get("cursor")
    if cursor is not None and "offset" in request.args:
        raise ApiError(
            400,
            "validation_failed",
            "invalid query",
            fields={"offset": "not with cursor: a cursor says where the page starts"},
        )
    offset = _int_arg("offset", 0, 0, MAX_OFFSET)
    page = found.rewards.find(
        campaign,
        referrer=request.args.get("referrer") or None,
        status=request.args.get("status"),
        limit=limit,
        offset=offset,
        cursor=cursor,
    )
    # limit and offset echoed as the flags' list does (offset null when paging by cursor);
    # next_cursor continues after this page whichever way it was asked for.
    return jsonify(
        rewards=page.rows,
        total=page.total,
        limit=limit,
        offset=None if cursor is not None else offset,
        next_cursor=page.next_cursor,
        budget=found.rewards.budget(campaign),
    )


def _only_args(*allowed: str) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise ApiError(
            400,
            "validation_failed",
            "invalid query",
            fields=dict.fromkeys(unknown, "unknown parameter"),
        )


# -- the review queue --------------------------------------------------------------------------

RISK = (Role.RISK,)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not ascii_digits(raw) or not low <= int(raw) <= high:
        raise ApiError(
            400, "validation_failed", "invalid query", fields={name: f"an integer {low}-{high}"}
        )
    return int(raw)


@bp.get("/flags")
@roles(*RISK)
def list_flags() -> Response:
    found = services()
    _only_args("campaign", "status", "kind", "sort", "limit", "offset")
    status = request.args.get("status")
    kind = request.args.get("kind")
    check_filters(status, kind)
    sort = request.args.get("sort", "score")
    if sort not in ("score", "amount"):
        raise ApiError(400, "invalid_sort", "sort must be score or amount")
    slug = request.args.get("campaign")
    ids = [found.campaigns.require(slug).id] if slug else list(found.campaigns.iter_ids())
    limit = _int_arg("limit", 100, 1, 1000)
    offset = _int_arg("offset", 0, 0, MAX_OFFSET)
    indexed = found.flags.stake_indexed(ids)
    if sort == "amount":
        if not indexed:
            raise ApiError(
                409,
                "stake_index_missing",
                "a campaign predates the amount-at-stake index: run `refgate flags reindex`",
            )
        flags, total, stake = found.flags.by_stake(
            ids, status=status, kind=kind, limit=limit, offset=offset
        )
    else:
        flags, total = found.flags.find(ids, status=status, kind=kind, limit=limit, offset=offset)
        stake = found.flags.stakes(flags) if indexed else {}
    return jsonify(
        flags=[{**f.public(), "amount_at_stake": stake.get(f.id)} for f in flags],
        total=total,
        limit=limit,
        offset=offset,
    )


@bp.get("/flags/<flag_id>")
@roles(*RISK)
def get_flag(flag_id: str) -> Response:
    _only_args()
    flag = services().flags.get(flag_id)
    if flag is None:
        raise ApiError(404, "flag_not_found", f"no flag {flag_id!r}")
    return jsonify(flag.public())


@bp.post("/flags/<flag_id>/decision")
@roles(*RISK)
def decide_flag(flag_id: str) -> Response:
    body = validate(FlagDecision, json_body(), "invalid decision")
    flag = services().flags.decide(flag_id, body.decision, body.note, actor(), expect=body.expect)
    log.info("flag %s decided %s by %s", flag_id, body.decision, actor())
    return jsonify(flag.public())


# -- inspecting a request --------------------------------------------------------------------


@bp.post("/inspect")
@roles(*READERS)
def inspect() -> Response:
    found = services()
    body = validate(InspectRequest, json_body(), "invalid inspect request")
    return jsonify(inspect_request(body, found.gateway.engine))


# -- the description of all of the above ------------------------------------------------------


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())


# Webhook endpoints are routes on this blueprint, kept in their own module.
from gateway.blueprints import webhooks as _webhooks  # noqa: E402, F401
