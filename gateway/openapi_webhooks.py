"""The webhook part of the OpenAPI document (gateway.openapi adds it)."""

from __future__ import annotations

from typing import Any

from gateway.webhooks import EVENTS, SIGNATURE_HEADER, WebhookCreate, WebhookRotate, WebhookUpdate

ENDPOINT_ID = {
    "name": "endpoint_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
EVENT_ID = {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}
ROLES = "(marketing, admin)"


def add_webhooks(schemas: dict[str, Any], paths: dict[str, Any]) -> None:
    from gateway.openapi import _errors, _json, _ref, _schema

    schemas["WebhookCreate"] = _schema(WebhookCreate)
    schemas["WebhookRotate"] = _schema(WebhookRotate)
    schemas["WebhookUpdate"] = _schema(WebhookUpdate)
    schemas["Webhook"] = {
        "type": "object",
        "required": ["id", "url", "events", "campaigns", "created_at", "retrying", "failed"],
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}},
            "campaigns": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Campaign slugs; empty: every campaign",
            },
            "description": {"type": "string"},
            "created_at": {"type": "number"},
            "created_by": {"type": "string"},
            "disabled": {"type": "boolean"},
            "previous_until": {
                "type": "number",
                "description": "Until when (unix time) the secret a rotation replaced still "
                "signs beside the current one; 0 when none does",
            },
            "rotated_at": {"type": ["number", "null"]},
            "retrying": {"type": "integer", "description": "Events waiting for a retry"},
            "failed": {"type": "integer", "description": "Events out of attempts"},
            "secret": {
                "type": "string",
                "description": "Signing secret, returned only when the endpoint is created "
                "or its secret rotated",
            },
        },
    }
    schemas["WebhookDelivery"] = {
        "type": "object",
        "required": ["event_id", "event", "attempt", "outcome", "latency_ms", "at"],
        "properties": {
            "event_id": {"type": "string"},
            "event": {"type": "string"},
            "attempt": {"type": "integer"},
            "outcome": {"type": "string", "enum": ["delivered", "retrying", "failed"]},
            "status_code": {"type": ["integer", "null"]},
            "error": {"type": "string"},
            "latency_ms": {"type": "number"},
            "at": {"type": "number"},
        },
    }
    schemas["WebhookFailure"] = {
        "type": "object",
        "required": ["event_id", "event", "attempts", "error"],
        "properties": {
            "event_id": {"type": "string"},
            "event": {"type": "string"},
            "attempts": {"type": "integer"},
            "error": {"type": "string"},
            "failed_at": {"type": ["number", "null"]},
        },
    }
    paths["/webhooks"] = {
        "post": {
            "operationId": "createWebhook",
            "summary": f"Register a webhook endpoint {ROLES}. Events are POSTed as JSON "
            f"`{{id, type, created, campaign, data}}` with `{SIGNATURE_HEADER}: t=<unix time>,"
            "v1=<hex HMAC-SHA256 of '<t>.<body>' under the secret>` and `Refgate-Event-Id` "
            "(the same on every attempt: deduplicate by it). Any 2xx is success; other answers "
            "are retried with exponential backoff, then failed. The URL must be http(s) without "
            "user information; private addresses only where the deployment allows them.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("WebhookCreate")}},
            },
            "responses": {
                "201": _json(_ref("Webhook"), "Created; `secret` is shown only now"),
                **_errors(400, 401, 403, 409, 413),
            },
        },
        "get": {
            "operationId": "listWebhooks",
            "summary": f"Registered webhook endpoints {ROLES}",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {"webhooks": {"type": "array", "items": _ref("Webhook")}},
                    }
                ),
                **_errors(401, 403),
            },
        },
    }
    paths["/webhooks/{endpoint_id}"] = {
        "parameters": [ENDPOINT_ID],
        "get": {
            "operationId": "getWebhook",
            "summary": f"One webhook endpoint {ROLES}",
            "responses": {"200": _json(_ref("Webhook")), **_errors(401, 403, 404)},
        },
        "patch": {
            "operationId": "updateWebhook",
            "summary": f"Disable or enable an endpoint {ROLES}. Nothing is sent to a disabled "
            "endpoint; enabled again, it gets what happened meanwhile that the outboxes still "
            "keep (an hour), and its delivery log and failed events stay.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("WebhookUpdate")}},
            },
            "responses": {"200": _json(_ref("Webhook")), **_errors(400, 401, 403, 404, 413)},
        },
        "delete": {
            "operationId": "deleteWebhook",
            "summary": f"Remove a webhook endpoint and its delivery state {ROLES}",
            "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)},
        },
    }
    paths["/webhooks/{endpoint_id}/rotate-secret"] = {
        "parameters": [ENDPOINT_ID],
        "post": {
            "operationId": "rotateWebhookSecret",
            "summary": f"A new signing secret {ROLES}. The previous one keeps signing beside "
            "it (a second `v1` in the signature header) for `expire_previous_after` seconds "
            "(default a day, 0 to stop at once), so the receiver can switch without a gap. "
            "The body may be empty.",
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref("WebhookRotate")}},
            },
            "responses": {
                "200": _json(_ref("Webhook"), "Rotated; `secret` is shown only now"),
                **_errors(400, 401, 403, 404, 413),
            },
        },
    }
    paths["/webhooks/{endpoint_id}/deliveries"] = {
        "parameters": [ENDPOINT_ID],
        "get": {
            "operationId": "listWebhookDeliveries",
            "summary": f"The endpoint's delivery log, newest first, and its failed events {ROLES}",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                }
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "deliveries": {"type": "array", "items": _ref("WebhookDelivery")},
                            "failed": {"type": "array", "items": _ref("WebhookFailure")},
                        },
                    }
                ),
                **_errors(400, 401, 403, 404),
            },
        },
    }
    paths["/webhooks/{endpoint_id}/deliveries/{event_id}/redeliver"] = {
        "parameters": [ENDPOINT_ID, EVENT_ID],
        "post": {
            "operationId": "redeliverWebhook",
            "summary": f"Send a failed event again, with fresh attempts, at the next run {ROLES}",
            "responses": {
                "202": _json(
                    {
                        "type": "object",
                        "properties": {
                            "event_id": {"type": "string"},
                            "queued": {"type": "boolean"},
                        },
                    },
                    "Queued",
                ),
                **_errors(401, 403, 404),
            },
        },
    }
