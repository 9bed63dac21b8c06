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

from gateway.blueprints import busy_when_the_store_fails
from gateway.challenge import MAX_SECONDS
from gateway.clickpath import StoreUnavailable, click_id
from gateway.fastpath import serve_click
from gateway.links import InvalidLink
from gateway.platforms import Strategy, detect
from gateway.services import Services, services
from gateway.store import keys

log = logging.getLogger(__name__)
bp = Blueprint("share", __name__)


@bp.route("/s/<token>", methods=["GET", "HEAD"])
def click(token: str) -> Response:
    return serve_click(services().gateway, token, request.environ).response()


@bp.post("/s/<token>/go")
def challenge_answer(token: str) -> Response:
    """A person tapped the challenge's button: on to the destination, with the same click id."""
    found = services()
    gateway = found.gateway
    try:
        link = found.codec.decode(token)
    except InvalidLink:
        return gateway.page(request.environ, 404, "click/not_found.html").response()
    # The campaign as it is now (edited, paused, ended, the sharer revoked since the challenge
    # was shown): the same destination and the same refusals as a click gets.
    try:
        current = gateway.current(link, time.time())
    except StoreUnavailable:
        return gateway.busy(request.environ).response()
    if current is None:
        return gateway.page(request.environ, 404, "click/not_found.html").response()
    view, state = current
    if state != "live":
        return gateway.gone(request.environ, view, state).response()
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
            # A person who tapped at once is told why the page came back (a script learns
            # nothing it did not know: the page is the same either way).
            again=result.problem == "too_fast",
        )
        return answer.response()
    assert result.click_id is not None
    if first_answer(found, link.campaign_id, result.click_id):
        found.recorder.count(link.campaign_id, "challenge:passed")
    client = detect(request.environ.get("HTTP_USER_AGENT", ""))
    strategy = view.strategy_for(client.platform)
    if strategy is not Strategy.REDIRECT:
        # In an app that blocks or cripples links the challenge leads on to what a click there
        # gets, the QR code, the app's way out and the link, with the same click id: not into a
        # destination the app will not open.
        return gateway.fallback(
            request.environ, view, client, strategy, token, result.click_id
        ).response()
    location = view.destination.with_param("rg_click", result.click_id)
    return Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def first_answer(found: Services, campaign_id: int, click: str) -> bool:
    """True the first time a click's challenge is passed: a double tap, a reload of the form or
    a replayed answer still goes on to the destination (the same click id, so no credit moves),
    but is not counted as another person passing. When the store fails the person goes on all
    the same; the tally misses them."""
    try:
        first = found.store.main.set(
            keys.campaign_keys(campaign_id).challenge_answered(click), 1, nx=True, ex=MAX_SECONDS
        )
    except RedisError as exc:
        log.warning("store unavailable marking a challenge answered: %s", exc)
        found.metrics.store_error("share")
        return False
    return bool(first)


bp.register_error_handler(RedisError, busy_when_the_store_fails("share"))
