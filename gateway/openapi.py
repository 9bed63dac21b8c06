"""The OpenAPI 3.1 description of ``/api/v1``. Request schemas come from the validating models,
so the document cannot drift from what the API accepts; a test checks it against the routes."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from gateway.campaigns import Campaign, CampaignCreate, CampaignPatch, PlatformUpdate
from gateway.inspect import InspectRequest
from gateway.platforms import PLATFORM_KEYS, Strategy
from gateway.sharelinks import REFERRER_PATTERN

REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], mode: str = "validation") -> dict[str, Any]:
    return model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid input; `fields` names each bad field",
        401: "Missing or unknown API key",
        403: "The key's role may not do this",
        404: "Not found",
        409: "Conflict with the current state",
        413: "Request body larger than 2 MiB",
    }
    return {str(code): _json(_ref("Error"), text[code]) for code in codes}


SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
REFERRER = {
    "name": "referrer",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": REFERRER_PATTERN.pattern},
}
AUTH_ERRORS = (401, 403)
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
        "required": ["referrer", "token", "url", "scan_url", "qr", "issued_at", "expires_at"],
        "properties": {
            "referrer": {"type": "string"},
            "token": {"type": "string", "maxLength": 60},
            "url": {"type": "string", "format": "uri"},
            "scan_url": {"type": "string", "format": "uri"},
            "qr": {
                "type": "object",
                "properties": {"png": {"type": "string"}, "svg": {"type": "string"}},
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
            "share_text": {"type": "string"},
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
            "referrers": {"type": "integer"},
            "decisions": counts,
            "outcomes": counts,
            "platforms": counts,
            "fallback_views": counts,
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
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
