"""Public images of a share link and invite codes.

``GET /s/<token>/qr.png``, ``/s/<token>/qr.svg`` (``size``: the image is at most this many pixels
wide; ``margin``: quiet zone in modules) and ``/s/<token>/poster.png`` hold the link's *scan* URL,
so scans are counted apart from clicks. An image never changes for its inputs, so it is sent with
an ETag and ``If-None-Match`` gets a 304 without rendering; caches keep it an hour, because the
link it carries may be revoked, expire or see its campaign end, and then its images are gone
(410, the click path's page saying why): a poster printed afterwards would lead nowhere.

``GET /c/<code>`` sends a person who typed a sharer's invite code to that sharer's current link.

These routes are not the click path (the fast path only takes ``/s/<token>`` itself); bad links
get the click path's own 404 page.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, request
from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from gateway.blueprints import busy_when_the_store_fails
from gateway.clickpath import StoreUnavailable
from gateway.fonts import FontProblem
from gateway.links import ShareLink
from gateway.media import IMAGE_CACHE, ImageJob, LogoUnavailable
from gateway.qr import BadParams, parse_params
from gateway.services import services

log = logging.getLogger(__name__)

bp = Blueprint("media", __name__)

TEXT = "text/plain; charset=utf-8"
#: An SVG opened on its own is a document of this origin: it may show its embedded logo, no more.
SVG_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@bp.get("/s/<token>/qr.<any(png, svg):kind>")
def qr_code(token: str, kind: str) -> Response:
    media = services().media
    found = media.find(token)
    if found is None:
        return _not_found()
    gone = _gone(found[0])
    if gone is not None:
        return gone
    try:
        job = media.qr(*found, kind, parse_params(request.args))
    except BadParams as exc:
        return Response(f"{exc}\n", 400, {"Content-Type": TEXT, "Cache-Control": "no-store"})
    return _send(job)


@bp.get("/s/<token>/poster.png")
def poster(token: str) -> Response:
    media = services().media
    found = media.find(token)
    if found is None:
        return _not_found()
    gone = _gone(found[0])
    if gone is not None:
        return gone
    try:
        job = media.poster(*found)
    except FontProblem as exc:
        # A configured poster's font is checked when the campaign is saved, so this is a font
        # removed since, or a campaign without a poster whose name no installed font can draw.
        log.error("poster of campaign %s cannot be drawn: %s", found[1].slug, exc)
        return Response(
            f"the poster cannot be drawn on this server: {exc}\n",
            500,
            {"Content-Type": TEXT, "Cache-Control": "no-store"},
        )
    return _send(job)


@bp.get("/c/<code>")
def invite(code: str) -> Response:
    target = services().links.invite_target(code)
    if target is None:
        return _not_found()
    return Response(status=302, headers={"Location": target, "Cache-Control": "no-store"})


@bp.errorhandler(LogoUnavailable)
def _logo_changing(exc: LogoUnavailable) -> Response:
    # The logo was replaced between reading the campaign and reading the logo: ask again.
    return services().gateway.busy(request.environ, retry_after=1).response()


def _send(job: ImageJob) -> Response:
    headers = {"ETag": f'"{job.etag}"', "Cache-Control": IMAGE_CACHE}
    if request.if_none_match.contains_weak(job.etag):
        return Response(status=304, headers=headers)
    headers["Content-Type"] = job.content_type
    headers["X-Content-Type-Options"] = "nosniff"
    if job.content_type == "image/svg+xml":
        headers["Content-Security-Policy"] = SVG_POLICY
    return Response(services().media.body(job), 200, headers)


#: States in which a link's images are no longer given out. A paused campaign's or one not
#: started yet still are: posters are printed ahead of the start, and a pause ends.
GONE = frozenset({"revoked", "expired", "ended"})


def _gone(link: ShareLink) -> Response | None:
    """The gone page (410) when the link was revoked or expired or its campaign ended, as a
    click on it would show; None while its images may be given out. When the store cannot say
    whether the sharer was revoked, the images are given out (they lead to the click path,
    which checks again)."""
    gateway = services().gateway
    try:
        current = gateway.current(link, time.time())
    except StoreUnavailable:
        return None
    if current is None or current[1] not in GONE:
        return None
    return gateway.gone(request.environ, *current).response()


def _not_found() -> Response:
    return services().gateway.page(request.environ, 404, "click/not_found.html").response()


bp.register_error_handler(RedisError, busy_when_the_store_fails("media"))
