"""Webhook endpoints under ``/api/v1/webhooks`` (marketing, admin), on the API blueprint so they
share its authentication, errors and headers. Delivery itself is a job (gateway.webhooks)."""

from __future__ import annotations

from flask import g, jsonify, request
from werkzeug.wrappers import Response

from gateway.apikeys import Role
from gateway.blueprints.api import _int_arg, _only_args, actor, bp, json_body, roles
from gateway.services import services

MANAGERS = (Role.MARKETING,)


@bp.post("/webhooks")
@roles(*MANAGERS)
def create_webhook() -> tuple[Response, int, dict[str, str]]:
    found = services()
    endpoint, secret = found.webhooks.create(json_body(), actor())
    body = {**found.webhooks.summary(endpoint), "secret": secret}
    return jsonify(body), 201, {"Location": f"/api/v1/webhooks/{endpoint.id}"}


@bp.get("/webhooks")
@roles(*MANAGERS)
def list_webhooks() -> Response:
    _only_args()
    hooks = services().webhooks
    return jsonify(webhooks=[hooks.summary(e) for e in hooks.endpoints()])


@bp.get("/webhooks/<endpoint_id>")
@roles(*MANAGERS)
def get_webhook(endpoint_id: str) -> Response:
    _only_args()
    hooks = services().webhooks
    return jsonify(hooks.summary(hooks.require(endpoint_id)))


@bp.patch("/webhooks/<endpoint_id>")
@roles(*MANAGERS)
def update_webhook(endpoint_id: str) -> Response:
    found = services()
    body = json_body()
    endpoint = found.webhooks.update(endpoint_id, body, actor())
    # Which fields changed, not their values: a URL may carry a receiver's token.
    g.audit_detail = {"fields": sorted(body)}
    return jsonify(found.webhooks.summary(endpoint))


@bp.delete("/webhooks/<endpoint_id>")
@roles(*MANAGERS)
def delete_webhook(endpoint_id: str) -> tuple[str, int]:
    services().webhooks.delete(endpoint_id)
    return "", 204


@bp.post("/webhooks/<endpoint_id>/rotate-secret")
@roles(*MANAGERS)
def rotate_webhook_secret(endpoint_id: str) -> Response:
    found = services()
    endpoint, secret = found.webhooks.rotate_secret(
        endpoint_id, json_body(allow_empty=True), actor()
    )
    return jsonify({**found.webhooks.summary(endpoint), "secret": secret})


@bp.get("/webhooks/<endpoint_id>/deliveries")
@roles(*MANAGERS)
def webhook_deliveries(endpoint_id: str) -> Response:
    _only_args("limit", "cursor")
    hooks = services().webhooks
    limit = _int_arg("limit", 100, 1, 1000)
    return jsonify(hooks.log_page(endpoint_id, limit=limit, cursor=request.args.get("cursor")))


@bp.post("/webhooks/<endpoint_id>/deliveries/<event_id>/redeliver")
@roles(*MANAGERS)
def redeliver_webhook(endpoint_id: str, event_id: str) -> tuple[Response, int]:
    services().webhooks.redeliver(endpoint_id, event_id)
    return jsonify(event_id=event_id, queued=True), 202
