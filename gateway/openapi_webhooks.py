"""The webhook part of the OpenAPI document (gateway.openapi adds it)."""

from __future__ import annotations

import re
from typing import Any

from gateway.campaigns import SLUG_PATTERN
from gateway.flags import FLAG_KINDS
from gateway.rewards import STATUSES as REWARD_STATUSES
from gateway.webhooks import (
    EVENT_ID as EVENT_ID_PATTERN,
)
from gateway.webhooks import (
    EVENTS,
    MAX_PREVIOUS_SECRETS,
    SIGNATURE_HEADER,
    USER_AGENT,
    WebhookCreate,
    WebhookRotate,
    WebhookUpdate,
)

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
        "required": [
            "id",
            "url",
            "events",
            "campaigns",
            "created_at",
            "waiting",
            "retrying",
            "failed",
        ],
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
                "description": "Until when (unix time) the secret the last rotation replaced "
                "still signs beside the current one; 0 when none does (secrets replaced by "
                "earlier rotations may still sign until their own overlaps end)",
            },
            "rotated_at": {"type": ["number", "null"]},
            "waiting": {
                "type": "integer",
                "description": "Events not tried yet (behind a failing receiver, one new event "
                "is tried a run); counted up to 200 a campaign",
            },
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
        "required": ["id", "event_id", "event", "attempt", "outcome", "latency_ms", "at"],
        "properties": {
            "id": {"type": "string", "description": "The attempt's entry in the delivery log"},
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
            "user information; private addresses only where the deployment allows them. Each "
            "event's body and headers: this document's `webhooks`.",
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
            "summary": f"Change an endpoint {ROLES}: any of `disabled`, `url`, `events`, "
            "`campaigns` (null: every campaign) and `description`, at least one; the rest stays. "
            "`url`, `events` and `campaigns` are checked as at registration (http(s), no user "
            "information, no private address unless the deployment allows them; unknown "
            "campaigns named). Nothing is sent to a disabled endpoint; enabled again, it gets "
            "what happened meanwhile that the outboxes still keep (an hour), and its delivery "
            "log and failed events stay. A new URL gets every delivery from then on, retries "
            "included; a campaign added is delivered from then on.",
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
            "(default a day, 0 to stop every old secret at once), so the receiver can switch "
            "without a gap. Rotating again within an overlap (a retried request) keeps the "
            "older secrets signing until their own overlaps end, up to "
            f"{MAX_PREVIOUS_SECRETS} beside the current one. The body may be empty.",
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
            "summary": f"The endpoint's delivery log, newest first, and its failed events {ROLES}. "
            "Each page holds up to `limit` of each; `next_cursor` continues both (a list already "
            "at its end comes back empty) and is null when neither has more. Attempts made "
            "meanwhile never shift a page.",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "description": "Rows of each list a page (default 100)",
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "A page's `next_cursor`, for this endpoint: the next page. A "
                    "malformed cursor or another listing's is a 400",
                },
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["deliveries", "failed", "next_cursor"],
                        "properties": {
                            "deliveries": {"type": "array", "items": _ref("WebhookDelivery")},
                            "failed": {"type": "array", "items": _ref("WebhookFailure")},
                            "next_cursor": {
                                "type": ["string", "null"],
                                "description": "Opaque: send it as `cursor` for the next page; "
                                "null on the last page",
                            },
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


#: Why a reward has its status (``reason``): decided at the conversion (gateway.conversions,
#: convert.lua) or by a flag or review (settle_reward.lua). Not an enum: a new detector may add
#: a reason, and a receiver should treat an unknown one as it treats the status.
REWARD_REASONS = (
    "Why: empty when credited at the conversion; held at the conversion: `flagged` (an open "
    "flag), `challenged_click`, `unscored_click`, "
    "`conversion_too_fast`, `referrer_under_review`; denied at the conversion: "
    "`no_reward_configured`, `referrer_fraud`, `click_fraud`, `click_denied`, `click_<outcome>` "
    "(a click that was not let through, such as `click_blocked`), `conversion_before_click`, "
    "`budget_exhausted`, `referrer_cap`, `daily_cap`; moved by a flag or a review: `flagged` "
    "(held when the flag was raised), `reviewed_legit` (credited, or held again while another "
    "flag about it is open), `reviewed_fraud` (denied or clawed back)"
)
#: What each event reports (the webhook's description).
EVENT_TEXT = {
    "conversion.created": "A participant joined through a click: the answer `POST /conversions` "
    "gave (201), sent once however often the conversion is reported again.",
    "reward.credited": "A reward was credited: at the conversion (`depth` present), or by a "
    "review (`flag` present): released by a `legit` decision, or paid back when `legit` "
    "corrects a `fraud` decision.",
    "reward.held": "A reward was held: at the conversion (`depth` present), or by a flag "
    "(`flag` present): raised on it (`flagged`), or paid back as held by a `legit` decision "
    "while another flag about it is still open (`reviewed_legit`).",
    "reward.denied": "A reward was denied: at the conversion (`depth` present, `amount` 0), or "
    "held and then reviewed `fraud` (`flag` present, `reviewed_fraud`, the amount it was held "
    "at).",
    "reward.clawed_back": "A credited reward was reviewed `fraud` and taken back (`flag` "
    "present, `reviewed_fraud`, the amount it was paid at).",
    "flag.raised": "A flag was opened for review. Raised again with more evidence, the same "
    "flag sends nothing more.",
}


def data_schema_name(event: str) -> str:
    """The component that describes an event's ``data``: ``reward.clawed_back`` ->
    ``RewardClawedBackData``."""
    return "".join(part.capitalize() for part in re.split(r"[._]", event)) + "Data"


def add_webhook_events(schemas: dict[str, Any]) -> dict[str, Any]:
    """The deliveries refgate makes, one OpenAPI 3.1 ``webhooks`` entry per event in EVENTS; the
    envelope and each event's ``data`` go into ``schemas``. Tests deliver every event for real
    and validate the bodies and headers against these."""
    from gateway.openapi import _ref

    schemas["WebhookEnvelope"] = {
        "type": "object",
        "description": "The body of every webhook delivery; `data` depends on `type`",
        "required": ["id", "type", "created", "campaign", "data"],
        "properties": {
            "id": {
                "type": "string",
                "pattern": EVENT_ID_PATTERN.pattern,
                "description": "The same on every attempt and every endpoint (also "
                "`Refgate-Event-Id`): deduplicate by it, delivery is at least once",
            },
            "type": {"type": "string", "enum": list(EVENTS)},
            "created": {
                "type": "number",
                "description": "When it happened (unix time, to the millisecond)",
            },
            "campaign": {
                "type": "string",
                "pattern": SLUG_PATTERN,
                "description": "The campaign's slug",
            },
            "data": {"type": "object"},
        },
    }
    schemas["WebhookReward"] = {
        "type": "object",
        "required": ["status", "reason", "amount"],
        "properties": {
            "status": {"type": "string", "enum": list(REWARD_STATUSES)},
            "reason": {"type": "string", "description": REWARD_REASONS},
            "amount": {
                "type": "integer",
                "minimum": 0,
                "description": "Units the reward is worth to the sharer: 0 when denied at the "
                "conversion; denied after being held, or clawed back, it keeps the amount it "
                "was held or paid at",
            },
        },
    }
    schemas["RewardEventData"] = {
        "type": "object",
        "description": "A conversion's reward after a change. Exactly one of `depth` (the "
        "reward as the conversion decided it) and `flag` (a flag or a review moved it) is "
        "present.",
        "required": ["participant", "parent", "click_id", "reward"],
        "properties": {
            "participant": {
                "type": "string",
                "description": "Who converted (`user` in `POST /conversions`)",
            },
            "parent": {"type": "string", "description": "The sharer the reward is for"},
            "click_id": {"type": "string"},
            "depth": {"type": "integer", "minimum": 1, "description": "The participant's depth"},
            "flag": {
                "type": "string",
                "description": "The flag whose raising or decision moved the reward",
            },
            "reward": _ref("WebhookReward"),
        },
        "oneOf": [{"required": ["depth"]}, {"required": ["flag"]}],
    }
    # What a conversion can decide: the other statuses come only from a review (with `flag`).
    decided = schemas["Reward"]["properties"]["status"]["enum"]
    webhooks: dict[str, Any] = {}
    for event in EVENTS:
        name = data_schema_name(event)
        if event == "conversion.created":
            schemas[name] = {"$ref": "#/components/schemas/Conversion"}
        elif event.startswith("reward."):
            status = event.removeprefix("reward.")
            overlay: dict[str, Any] = {
                "properties": {"reward": {"properties": {"status": {"const": status}}}}
            }
            if status not in decided:
                overlay["required"] = ["flag"]
            schemas[name] = {"allOf": [_ref("RewardEventData"), overlay]}
        elif event == "flag.raised":
            schemas[name] = {
                "type": "object",
                "required": ["id", "kind", "subject", "score", "reasons", "members"],
                "properties": {
                    "id": {"type": "string", "description": "The flag's id (`GET /flags/{id}`)"},
                    "kind": {"type": "string", "enum": list(FLAG_KINDS)},
                    "subject": {
                        "type": "string",
                        "description": "By `kind`: a click id, a referrer's or participant's "
                        "id, or a cluster's name",
                    },
                    "score": {"type": "number"},
                    "reasons": {"type": "array", "items": {"type": "string"}},
                    "members": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "A cluster's participants; empty for other kinds",
                    },
                },
            }
        else:
            raise ValueError(f"no payload schema for the webhook event {event!r}")
        schemas[name]["description"] = EVENT_TEXT[event]
        webhooks[event] = {"post": _delivery(event, name)}
    return webhooks


def _delivery(event: str, data_schema: str) -> dict[str, Any]:
    from gateway.openapi import _ref

    def header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "header",
            "required": True,
            "schema": schema,
            "description": description,
        }

    name = data_schema.removesuffix("Data")
    return {
        "operationId": name[0].lower() + name[1:] + "Webhook",
        "summary": f"The `{event}` event, POSTed to the endpoints subscribed to it",
        "description": EVENT_TEXT[event],
        # Refgate signs the body; receivers do not get an API key.
        "security": [],
        "parameters": [
            header(
                SIGNATURE_HEADER,
                {"type": "string", "pattern": r"^t=[0-9]+(,v1=[0-9a-f]{64})+$"},
                "`t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<raw body>' under the endpoint's "
                "secret>`, and one more `v1` for each previous secret while a rotation "
                "overlaps. "
                "Accept the body when any `v1` matches and `t` is within five minutes of your "
                "clock.",
            ),
            header(
                "Refgate-Event-Id",
                {"type": "string", "pattern": EVENT_ID_PATTERN.pattern},
                "The body's `id`: the same on every attempt and every endpoint",
            ),
            header("Refgate-Event-Type", {"type": "string", "const": event}, "The body's `type`"),
            header(
                "Refgate-Delivery-Attempt",
                {"type": "integer", "minimum": 1},
                "1 for the first attempt, counting retries and redeliveries",
            ),
            header("User-Agent", {"type": "string", "const": USER_AGENT}, "Refgate's"),
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [
                            _ref("WebhookEnvelope"),
                            {"properties": {"type": {"const": event}, "data": _ref(data_schema)}},
                        ]
                    }
                }
            },
        },
        "responses": {
            "2XX": {"description": "Delivered: any 2xx (the answer's body is not used)"},
            "default": {
                "description": "Anything else (redirects are not followed), or no answer "
                "within the timeout (`REFGATE_WEBHOOK_TIMEOUT`, 5 s): retried with "
                "exponential backoff and jitter (by default 30 s doubling to at most an hour, "
                "8 attempts), then failed until redelivered through "
                "`POST /webhooks/{endpoint_id}/deliveries/{event_id}/redeliver`"
            },
        },
    }
