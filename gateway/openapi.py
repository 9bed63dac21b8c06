"""The OpenAPI 3.1 description of ``/api/v1``. Request schemas come from the validating models,
so the document cannot drift from what the API accepts; a test checks it against the routes."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from gateway.campaigns import Campaign, CampaignCreate, CampaignPatch
from gateway.invites import INVITE_CODE_PATTERN
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
        "properties": {"referrer": REFERRER["schema"]},
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
