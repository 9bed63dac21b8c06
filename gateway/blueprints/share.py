"""The public click path, ``GET /s/<token>``.

Requests of this shape are answered by :mod:`gateway.fastpath` before Flask dispatches; this
route names the endpoint for ``url_for`` and the URL map and answers through the same gateway.
"""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from gateway.fastpath import serve_click
from gateway.services import services

bp = Blueprint("share", __name__)


@bp.route("/s/<token>", methods=["GET", "HEAD"])
def click(token: str) -> Response:
    answer = serve_click(services().gateway, token, request.environ)
    return Response(answer.body, status=answer.status, headers=answer.headers)
