"""The Flask blueprints, one per audience; helpers the public ones share."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import request
from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from gateway.services import services

log = logging.getLogger(__name__)


def busy_when_the_store_fails(where: str) -> Callable[[RedisError], Response]:
    """A blueprint's RedisError handler: the busy page (503, Retry-After), as the click path
    answers when the store fails, counted in refgate_store_errors_total{where}."""

    def store_down(exc: RedisError) -> Response:
        log.warning("store unavailable serving %s: %s", request.path, exc)
        found = services()
        found.metrics.store_error(where)
        return found.gateway.busy(request.environ).response()

    return store_down
