"""Serving ``GET /s/<token>`` ahead of Flask's dispatch.

The click path is the one endpoint that takes festival-peak traffic, and Flask's per-request
machinery (request and app contexts, routing, sessions, response finalisation) costs about as much
CPU as the gateway's own work. This middleware recognises the click path by its shape and hands it
straight to :class:`~gateway.clickpath.ClickGateway`; every other request, and every page the
click path renders, still goes through Flask. The Flask route for ``/s/<token>`` stays registered
(url_for, the URL map) and calls the same gateway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from flask import Flask, render_template

from gateway.clickpath import Answer, ClickGateway, Environ, StartResponse

log = logging.getLogger(__name__)

PREFIX = "/s/"


class ClickPathMiddleware:
    def __init__(self, flask_wsgi: Any, gateway: ClickGateway) -> None:
        self._next = flask_wsgi
        self._gateway = gateway

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX) and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            token = path[len(PREFIX) :]
            if token and "/" not in token:
                return serve_click(self._gateway, token, environ)(environ, start_response)
        answer: Iterable[bytes] = self._next(environ, start_response)
        return answer


def serve_click(gateway: ClickGateway, token: str, environ: Environ) -> Answer:
    """The gateway's answer; an unexpected error still gets a person a page, never a crash."""
    try:
        return gateway.handle(token, environ)
    except Exception:
        log.exception("click path failed for %s", environ.get("PATH_INFO"))
        try:
            return gateway.busy(environ)
        except Exception:
            log.exception("busy page failed too")
            return Answer(
                503, [("Content-Type", "text/plain"), ("Retry-After", "5")], b"busy, try again"
            )


class FlaskPageRenderer:
    """Renders the click path's pages inside a Flask request context (pages only, not redirects)."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    def __call__(self, environ: Environ, template: str, **context: Any) -> str:
        with self._app.request_context(environ):
            return render_template(template, **context)
