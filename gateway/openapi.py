"""The OpenAPI 3.1 description of ``/api/v1``. Request schemas come from the validating models,
so the document cannot drift from what the API accepts; a test checks it against the routes."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from gateway.campaigns import Campaign, CampaignCreate, CampaignPatch, PlatformUpdate
from gateway.conversions import ConversionRequest
from gateway.flags import FLAG_KINDS, STATUSES, FlagDecision
from gateway.inspect import InspectRequest
from gateway.invites import INVITE_CODE_PATTERN
from gateway.platforms import PLATFORM_KEYS, Strategy
from gateway.rewards import STATUSES as REWARD_STATUSES
from gateway.sharelinks import REFERRER_PATTERN
from gateway.validation import MAX_OFFSET

REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], mode: str = "validation") -> dict[str, Any]:
    return model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid input; `fields` names each bad field (a key sent twice in a JSON body "
        "too, by its path)",
        401: "Missing or unknown API key",
        403: "The key's role may not do this",
        404: "Not found",
        409: "Conflict with the current state",
        413: "Request body larger than 2 MiB",
        422: "Refused",
        503: "The store is unreachable (`store_unavailable`: nothing was changed; money fails "
        "closed) or the worker is shedding load (`overloaded`); retry after `Retry-After`",
    }
    # Any call can meet an outage or an overload: every operation lists 503.
    found = {str(code): _json(_ref("Error"), text[code]) for code in (*codes, 503)}
    # Declared, so a generated client can honour it rather than retrying at once.
    found["503"]["headers"] = {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    }
    if "401" in found:
        found["401"]["headers"] = {
            "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}
        }
    return found


SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
REFERRER = {
    "name": "referrer",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": REFERRER_PATTERN.pattern},
}
PARTICIPANT = {"name": "participant", "in": "path", "required": True, "schema": {"type": "string"}}
AUTH_ERRORS = (401, 403)
#: An offset or cursor into a list, as the API takes it (a larger one is a 400).
PAGE_OFFSET = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}
STRATEGIES = [s.value for s in Strategy]


@cache
def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model, mode in (
        (CampaignCreate, "validation"),
        (CampaignPatch, "validation"),
        (Campaign, "serialization"),
    ):
        schema = _schema(model, mode)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    campaign_out = schemas["Campaign"]
    campaign_out["properties"]["state"] = {
        "type": "string",
        "enum": ["live", "paused", "not_started", "ended"],
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    schemas["LinkRequest"] = {
        "type": "object",
        "required": ["referrer"],
        "additionalProperties": False,
        "properties": {
            "referrer": REFERRER["schema"],
            "platform": {
                "anyOf": [{"type": "string", "enum": list(PLATFORM_KEYS)}, {"type": "null"}],
                "description": "Where the sharer will share; decides `mode`.",
            },
        },
    }
    schemas["PlatformUpdate"] = _schema(PlatformUpdate)
    schemas["InspectRequest"] = _schema(InspectRequest)
    schemas["FlagDecision"] = _schema(FlagDecision)
    schemas["ConversionRequest"] = _schema(ConversionRequest)
    schemas["Reward"] = {
        "type": "object",
        "required": ["status", "reason", "amount"],
        "properties": {
            "status": {"type": "string", "enum": ["credited", "held", "denied"]},
            "reason": {"type": "string"},
            "amount": {"type": "integer"},
        },
    }
    schemas["RewardEntry"] = {
        "type": "object",
        "description": "A reward in the ledger, as it now is",
        "required": [
            "user",
            "referrer",
            "click_id",
            "status",
            "reason",
            "amount",
            "ts",
            "settled_at",
        ],
        "properties": {
            "user": {"type": "string", "description": "The participant whose join earned it"},
            "referrer": {"type": "string", "description": "The sharer it is for"},
            "click_id": {"type": "string"},
            "status": {"type": "string", "enum": list(REWARD_STATUSES)},
            "reason": {"type": "string"},
            "amount": {"type": "integer"},
            "ts": {"type": "number", "description": "When the conversion made it (unix time)"},
            "settled_at": {
                "type": ["number", "null"],
                "description": "When a flag or a review last moved it; null if never",
            },
        },
    }
    schemas["Conversion"] = {
        "type": "object",
        "required": ["participant", "parent", "depth", "click_id", "reward"],
        "properties": {
            "participant": {"type": "string"},
            "parent": {"type": "string"},
            "depth": {"type": "integer"},
            "click_id": {"type": "string"},
            "reward": _ref("Reward"),
        },
    }
    schemas["Budget"] = {
        "type": "object",
        "required": ["total", "spent", "held", "left", "exhausted"],
        "properties": {
            "total": {"type": "integer"},
            "spent": {"type": "integer"},
            "held": {"type": "integer"},
            "left": {"type": "integer"},
            "exhausted": {"type": "boolean"},
        },
    }
    schemas["PersonInCampaign"] = {
        "type": "object",
        "description": "What one campaign knows of a person, read by key",
        "required": [
            "campaign", "depth", "joined", "invited", "links", "flags", "clusters",
            "rewards", "own_reward",
        ],
        "properties": {
            "campaign": {"type": "string", "description": "The campaign's slug"},
            "depth": {
                "type": ["integer", "null"],
                "description": "Their depth in the referral tree (0: a first sharer); null when "
                "they are not in it",
            },
            "joined": {"type": ["number", "null"], "description": "When they joined (unix s)"},
            "invited": {"type": "integer", "description": "People they invited directly"},
            "links": {
                "type": ["string", "null"],
                "enum": ["active", "revoked", None],
                "description": "Their share links as the click path sees them; null: none",
            },
            "flags": {
                "type": "object",
                "description": "Their own flags' statuses by kind (referrer, participant)",
                "additionalProperties": {"type": "string", "enum": ["open", "fraud", "legit"]},
            },
            "clusters": {
                "type": "integer",
                "description": "Cluster flags listing them as a member",
            },
            "rewards": {
                "type": "object",
                "description": "Units credited and held for the people they invited, and how "
                "many conversions were rewarded",
                "required": ["credited", "held", "conversions"],
                "properties": {
                    "credited": {"type": "integer"},
                    "held": {"type": "integer"},
                    "conversions": {"type": "integer"},
                },
            },
            "own_reward": {
                "type": ["string", "null"],
                "enum": ["credited", "held", "denied", "clawed_back", None],
                "description": "The status of their own reward for joining; null: none",
            },
        },
    }  # fmt: skip
    schemas["TreeNode"] = {
        "type": "object",
        "required": ["id", "depth", "subtree_size", "subtree_height", "children"],
        "properties": {
            "id": {"type": "string"},
            "parent": {"type": ["string", "null"]},
            "depth": {"type": "integer"},
            "joined": {"type": "number"},
            "subtree_size": {"type": "integer"},
            "subtree_height": {"type": "integer"},
            "children": {"type": "integer", "description": "Number of children"},
            "flags": {"type": "object"},
            "rewards": {"type": "object"},
            "children_page": {
                "type": "object",
                "properties": {
                    "nodes": {"type": "array", "items": {"$ref": "#/components/schemas/TreeNode"}},
                    "total": {"type": "integer"},
                    "next_cursor": {"type": ["integer", "null"]},
                },
            },
            "truncated": {"type": "boolean"},
        },
    }
    schemas["Flag"] = {
        "type": "object",
        "required": ["id", "campaign", "kind", "subject", "score", "reasons", "status"],
        "properties": {
            "id": {"type": "string"},
            "campaign": {"type": "string"},
            "kind": {"type": "string", "enum": list(FLAG_KINDS)},
            "subject": {"type": "string"},
            "score": {"type": "number"},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "members": {"type": "array", "items": {"type": "string"}},
            "evidence": {"type": "object"},
            "status": {"type": "string", "enum": list(STATUSES)},
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "decided_by": {"type": "string"},
            "decided_at": {"type": ["number", "null"]},
            "note": {"type": "string"},
        },
    }
    schemas["Inspection"] = {
        "type": "object",
        "required": ["platform", "os", "mobile", "browser_family", "bot", "network", "signals"],
        "properties": {
            "platform": {"type": "object"},
            "os": {"type": "string"},
            "mobile": {"type": "boolean"},
            "browser_family": {"type": "string"},
            "bot": {"type": "string", "enum": ["", "crawler", "link_preview"]},
            "network": {"type": "object"},
            "signals": {"type": "array", "items": {"type": "object"}},
        },
    }
    schemas["Platform"] = {
        "type": "object",
        "required": ["platform", "name", "in_app", "default_strategy", "strategy", "status"],
        "properties": {
            "platform": {"type": "string", "enum": list(PLATFORM_KEYS)},
            "name": {"type": "string"},
            "in_app": {"type": "boolean"},
            "default_strategy": {"type": "string", "enum": STRATEGIES},
            "strategy": {"type": "string", "enum": STRATEGIES},
            "status": {"type": "string", "enum": ["ok", "blocked"]},
            "note": {"type": "string"},
            "set_by": {"type": ["string", "null"]},
            "set_at": {"type": ["string", "null"]},
            "alert": {
                "type": ["object", "null"],
                "description": "An open 'possible block' alert: the platform's share of clicks "
                "collapsed against its baseline while other platforms held.",
            },
        },
    }
    schemas["Link"] = {
        "type": "object",
        "required": [
            "referrer",
            "token",
            "url",
            "scan_url",
            "qr",
            "code",
            "issued_at",
            "expires_at",
        ],
        "properties": {
            "referrer": {"type": "string"},
            "token": {"type": "string", "maxLength": 60},
            "url": {"type": "string", "format": "uri"},
            "scan_url": {"type": "string", "format": "uri"},
            "qr": {
                "type": "object",
                "properties": {"png": {"type": "string"}, "svg": {"type": "string"}},
            },
            "code": {
                "type": "string",
                "description": "Invite code to type at /c/<code> when scanning fails",
                "pattern": INVITE_CODE_PATTERN,
            },
            "issued_at": {"type": "integer"},
            "expires_at": {"type": "integer"},
            "platform": {"type": ["string", "null"]},
            "mode": {
                "type": "string",
                "enum": ["link", "qr"],
                "description": "What to share first: `qr` (the poster) when the platform blocks "
                "this campaign's links.",
            },
            "share_text": {
                "type": "string",
                "description": "The words to share: with the link in `link` mode; in `qr` mode "
                "without it, to post beside the poster (a post carrying a link the platform "
                "blocks is blocked too).",
            },
            "poster": {"type": "string"},
        },
    }
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    schemas["Stats"] = {
        "type": "object",
        "required": ["campaign", "clicks", "unique_visitors"],
        "properties": {
            "campaign": {"type": "string"},
            "clicks": {"type": "integer"},
            "link_clicks": {"type": "integer"},
            "scan_clicks": {"type": "integer"},
            "unscored_clicks": {"type": "integer"},
            "unique_visitors": {"type": "integer"},
            "referrers": {
                "type": "integer",
                "description": "People who may share in this campaign: sharers given a link, "
                "and participants who joined (each joiner may share in turn and is checked "
                "against their own devices when they do)",
            },
            "decisions": counts,
            "outcomes": counts,
            "platforms": counts,
            "fallback_views": counts,
            "tree": {"type": "object"},
            "budget": _ref("Budget"),
        },
    }

    paths: dict[str, Any] = {
        "/campaigns": {
            "post": {
                "operationId": "createCampaign",
                "summary": "Create a campaign (marketing, admin)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CampaignCreate")}},
                },
                "responses": {
                    "201": _json(_ref("Campaign"), "Created"),
                    **_errors(400, *AUTH_ERRORS, 409, 413),
                },
            },
            "get": {
                "operationId": "listCampaigns",
                "summary": "List campaigns (marketing, risk, admin)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "campaigns": {"type": "array", "items": _ref("Campaign")}
                            },
                        }
                    ),
                    **_errors(*AUTH_ERRORS),
                },
            },
        },
        "/campaigns/{slug}": {
            "parameters": [SLUG],
            "get": {
                "operationId": "getCampaign",
                "summary": "One campaign (marketing, risk, admin)",
                "responses": {"200": _json(_ref("Campaign")), **_errors(*AUTH_ERRORS, 404)},
            },
            "patch": {
                "operationId": "updateCampaign",
                "summary": "Edit, pause, resume or end a campaign (marketing, admin)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CampaignPatch")}},
                },
                "responses": {
                    "200": _json(_ref("Campaign")),
                    **_errors(400, *AUTH_ERRORS, 404, 409, 413),
                },
            },
        },
        "/campaigns/{slug}/stats": {
            "parameters": [SLUG],
            "get": {
                "operationId": "getCampaignStats",
                "summary": "Click counts of a campaign (marketing, risk, admin)",
                "responses": {"200": _json(_ref("Stats")), **_errors(*AUTH_ERRORS, 404)},
            },
        },
        "/campaigns/{slug}/links": {
            "parameters": [SLUG],
            "post": {
                "operationId": "mintLink",
                "summary": "Mint a sharer's signed link and QR code URLs (marketing, admin)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("LinkRequest")}},
                },
                "responses": {
                    "201": _json(_ref("Link"), "Created"),
                    **_errors(400, *AUTH_ERRORS, 404, 409, 413),
                },
            },
        },
        "/campaigns/{slug}/referrers/{referrer}/revoke": {
            "parameters": [SLUG, REFERRER],
            "post": {
                "operationId": "revokeReferrer",
                "summary": "Revoke every link of a sharer minted so far (marketing, risk, admin)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "revoked": {"type": "boolean"},
                                "generation": {"type": "integer"},
                            },
                        }
                    ),
                    **_errors(400, *AUTH_ERRORS, 404),
                },
            },
        },
        "/campaigns/{slug}/platforms": {
            "parameters": [SLUG],
            "get": {
                "operationId": "listPlatforms",
                "summary": "Every platform's block status, strategy and alert for a campaign "
                "(marketing, risk, admin)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "platforms": {"type": "array", "items": _ref("Platform")}
                            },
                        }
                    ),
                    **_errors(*AUTH_ERRORS, 404),
                },
            },
        },
        "/campaigns/{slug}/platforms/{platform}": {
            "parameters": [
                SLUG,
                {
                    "name": "platform",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": list(PLATFORM_KEYS)},
                },
            ],
            "put": {
                "operationId": "setPlatform",
                "summary": "Mark a platform blocked or ok for a campaign, with a note "
                "(marketing, risk, admin); kept with who and when",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("PlatformUpdate")}},
                },
                "responses": {
                    "200": _json(_ref("Platform")),
                    **_errors(400, *AUTH_ERRORS, 404, 409),
                },
            },
        },
        "/conversions": {
            "post": {
                "operationId": "convert",
                "summary": "Report a conversion: the click's visitor joined as `user` (conversion, "
                "admin). 201 when new; 200 with the first answer for a retry or a user who joined "
                "already (first touch wins)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ConversionRequest")}},
                },
                "responses": {
                    "201": _json(_ref("Conversion"), "Joined"),
                    "200": _json(_ref("Conversion"), "Joined earlier: the first answer"),
                    **_errors(400, *AUTH_ERRORS, 404, 409, 413),
                    "422": _json(
                        _ref("Error"),
                        "Refused: the sharer's own link (`self_referral`), a join that would "
                        "make a cycle (`cycle`), or an `idempotency_key` already used for "
                        "another user (`idempotency_key_reused`)",
                    ),
                },
            },
        },
        "/campaigns/{slug}/tree/{participant}": {
            "parameters": [SLUG, PARTICIPANT],
            "get": {
                "operationId": "getSubtree",
                "summary": "A participant's subtree, `depth` levels, `limit` children per node, "
                "children paged by `cursor` (marketing, risk, admin)",
                "parameters": [
                    {
                        "name": "depth",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 5},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    },
                    {"name": "cursor", "in": "query", "schema": PAGE_OFFSET},
                ],
                "responses": {"200": _json(_ref("TreeNode")), **_errors(400, *AUTH_ERRORS, 404)},
            },
        },
        "/campaigns/{slug}/ancestors/{participant}": {
            "parameters": [SLUG, PARTICIPANT],
            "get": {
                "operationId": "getAncestors",
                "summary": "The chain from the root to a participant's parent "
                "(marketing, risk, admin)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "participant": {"type": "string"},
                                "ancestors": {"type": "array", "items": _ref("TreeNode")},
                            },
                        }
                    ),
                    **_errors(*AUTH_ERRORS, 404),
                },
            },
        },
        "/people/{person}": {
            "parameters": [
                {
                    "name": "person",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": REFERRER_PATTERN.pattern},
                    "description": "Their external id, as the landing application sends it",
                }
            ],
            "get": {
                "operationId": "findPerson",
                "summary": "Each campaign that knows a person: in its tree, with links, a flag "
                "about them or a reward (marketing, risk, admin)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["person", "campaigns"],
                            "properties": {
                                "person": {"type": "string"},
                                "campaigns": {
                                    "type": "array",
                                    "items": _ref("PersonInCampaign"),
                                },
                            },
                        }
                    ),
                    **_errors(400, *AUTH_ERRORS),
                },
            },
        },
        "/rewards": {
            "get": {
                "operationId": "listRewards",
                "summary": "A campaign's rewards, newest first, with its budget "
                "(marketing, risk, admin)",
                "parameters": [
                    {
                        "name": "campaign",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {"name": "referrer", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["credited", "held", "denied", "clawed_back"],
                        },
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "schema": PAGE_OFFSET,
                        "description": "Rows to skip (kept for older clients: pages shift as "
                        "rewards arrive; page by `cursor` instead). Not with `cursor`",
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "A page's `next_cursor`, with the same campaign, "
                        "referrer and status: the next page, unshifted by rewards arriving "
                        "meanwhile. A malformed cursor or another listing's is a 400",
                    },
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": [
                                "rewards",
                                "total",
                                "limit",
                                "offset",
                                "next_cursor",
                                "budget",
                            ],
                            "properties": {
                                "rewards": {"type": "array", "items": _ref("RewardEntry")},
                                "total": {
                                    "type": "integer",
                                    "description": "Rewards matching the filters, all pages",
                                },
                                "limit": {"type": "integer"},
                                "offset": {
                                    "type": ["integer", "null"],
                                    "description": "As sent (0 by default); null when paging "
                                    "by cursor",
                                },
                                "next_cursor": {
                                    "type": ["string", "null"],
                                    "description": "Opaque: send it as `cursor` for the next "
                                    "page; null on the last page",
                                },
                                "budget": _ref("Budget"),
                            },
                        }
                    ),
                    **_errors(400, *AUTH_ERRORS, 404),
                },
            },
        },
        "/flags": {
            "get": {
                "operationId": "listFlags",
                "summary": "The review queue, highest score first, or highest amount at stake "
                "first with sort=amount (risk, admin)",
                "parameters": [
                    {"name": "campaign", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(STATUSES)},
                    },
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(FLAG_KINDS)},
                    },
                    {
                        "name": "sort",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["score", "amount"]},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                    {"name": "offset", "in": "query", "schema": PAGE_OFFSET},
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "flags": {
                                    "type": "array",
                                    "items": {
                                        "allOf": [
                                            _ref("Flag"),
                                            {
                                                "type": "object",
                                                "properties": {
                                                    "amount_at_stake": {
                                                        "type": ["integer", "null"],
                                                        "description": "Credited and held "
                                                        "rewards a decision would move (null "
                                                        "before `refgate flags reindex`)",
                                                    }
                                                },
                                            },
                                        ]
                                    },
                                },
                                "total": {"type": "integer"},
                                "limit": {"type": "integer"},
                                "offset": {"type": "integer"},
                            },
                        }
                    ),
                    **_errors(400, *AUTH_ERRORS, 404, 409),
                },
            },
        },
        "/flags/{flag_id}": {
            "parameters": [
                {"name": "flag_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {
                "operationId": "getFlag",
                "summary": "One flag with its evidence (risk, admin)",
                "responses": {"200": _json(_ref("Flag")), **_errors(*AUTH_ERRORS, 404)},
            },
        },
        "/flags/{flag_id}/decision": {
            "parameters": [
                {"name": "flag_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "post": {
                "operationId": "decideFlag",
                "summary": "Decide a flag: fraud or legit, with a note; kept with who and when, "
                "usable as a training label (risk, admin)",
                "description": "fraud claws back the credited rewards the flag touches and "
                "denies the held ones; legit releases the held ones that no other open flag "
                "is about. Deciding again corrects the decision: legit after fraud pays back "
                "what the fraud decision took, within the budget and the sharer's cap, unless "
                "another fraud decision is about the reward (held again while another flag "
                "about it is open). With `expect`, a flag whose status is another is left "
                "as it is: 409 `flag_decided_meanwhile`, `fields.expect` saying what it is "
                "(`the flag is fraud`).",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("FlagDecision")}},
                },
                "responses": {
                    "200": _json(_ref("Flag")),
                    **_errors(400, *AUTH_ERRORS, 404, 409, 413),
                },
            },
        },
        "/inspect": {
            "post": {
                "operationId": "inspect",
                "summary": "How refgate classifies a request: platform, browser, bot, network and "
                "the request-level fraud signals (marketing, risk, admin)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("InspectRequest")}},
                },
                "responses": {"200": _json(_ref("Inspection")), **_errors(400, *AUTH_ERRORS, 413)},
            },
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"})},
            }
        },
    }
    from gateway.openapi_webhooks import add_webhook_events, add_webhooks

    add_webhooks(schemas, paths)
    webhooks = add_webhook_events(schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "refgate API",
            "version": "1",
            "description": "Campaigns, signed share links, stats. "
            "Authenticate with `Authorization: Bearer <API key>`.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        # What refgate POSTs to webhook endpoints: every event's body and headers.
        "webhooks": webhooks,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
