"""The public click path: ``GET /s/<token>`` and the challenge's one-tap answer.

``GET /s/<token>`` is answered by :mod:`gateway.fastpath` before Flask dispatches; the route here
names the endpoint for ``url_for`` and the URL map and answers through the same gateway.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, request
from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from gateway.clickpath import StoreUnavailable, click_id
from gateway.fastpath import serve_click
from gateway.links import InvalidLink
from gateway.services import services

bp = Blueprint("share", __name__)
log = logging.getLogger(__name__)


def _response(answer: object) -> Response:
    body, status, headers = answer.body, answer.status, answer.headers  # type: ignore[attr-defined]
    return Response(body, status=status, headers=headers)


@bp.route("/s/<token>", methods=["GET", "HEAD"])
def click(token: str) -> Response:
    return _response(serve_click(services().gateway, token, request.environ))


@bp.post("/s/<token>/go")
def challenge_answer(token: str) -> Response:
    """A person tapped the challenge's button: on to the destination, with the same click id."""
    found = services()
    gateway = found.gateway
    try:
        link = found.codec.decode(token)
    except InvalidLink:
        return _response(gateway.page(request.environ, 404, "click/not_found.html"))
    # The campaign as it is now (edited, paused, ended, the sharer revoked since the challenge
    # was shown): the same destination and the same refusals as a click gets.
    try:
        current = gateway.current(link, time.time())
    except StoreUnavailable:
        return _response(gateway.busy(request.environ))
    if current is None:
        return _response(gateway.page(request.environ, 404, "click/not_found.html"))
    view, state = current
    if state != "live":
        return _response(gateway.gone(request.environ, view, state))
    result = gateway.challenges.check(request.form.get("c", ""), token)
    if not result.passed:
        # Too fast, stale or forged: the same page again (a person just taps once more). A
        # forged answer gets a click id that was never recorded: it can never earn credit.
        answer = gateway.page(
            request.environ,
            200,
            "click/challenge.html",
            slots={
                "token": token,
                "challenge": gateway.challenges.issue(result.click_id or click_id(link), token),
            },
            view=view,
        )
        return _response(answer)
    assert result.click_id is not None
    found.recorder.count(link.campaign_id, "challenge:passed")
    location = view.destination.with_param("rg_click", result.click_id)
    return Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


@bp.errorhandler(RedisError)
def _store_down(exc: RedisError) -> Response:
    """The busy page (503, Retry-After), as the click path answers when the store fails."""
    log.warning("store unavailable serving %s: %s", request.path, exc)
    found = services()
    found.metrics.store_error("share")
    return _response(found.gateway.busy(request.environ))
