"""Liveness (the process answers), readiness (the store answers) and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint, jsonify
from redis.cluster import RedisCluster
from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from gateway.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    found = services()
    try:
        if found.store.is_cluster:
            # A plain PING asks one node (redis-py's default node), which said ready while the
            # primary holding a campaign's slot was down: every primary must answer.
            found.store.fast.ping(target_nodes=RedisCluster.PRIMARIES)
        else:
            found.store.fast.ping()
        store = "ok"
    except RedisError as exc:
        store = f"unavailable: {exc.__class__.__name__}"
    spooled = found.recorder.spool.depth()
    ready = store == "ok"
    response = jsonify(
        status="ready" if ready else "degraded",
        store=store,
        spool_depth=spooled,
        # This worker's latest spool write: "ok", or why it failed (a full disk).
        spool=f"failing: {found.recorder.spool_error}" if found.recorder.spool_error else "ok",
    )
    response.status_code = 200 if ready else 503
    return response


@bp.get("/metrics")
def metrics() -> Response:
    found = services()
    body, content_type = found.metrics.render(found.recorder.spool.depth)
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
