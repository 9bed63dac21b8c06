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
import time
from collections.abc import Iterable
from typing import Any

import orjson
from flask import Flask, render_template

from gateway.admission import RETRY_AFTER, UNSHED, Admission, queue_wait
from gateway.clickpath import Answer, ClickGateway, Environ, StartResponse
from gateway.metrics import Metrics

log = logging.getLogger(__name__)

PREFIX = "/s/"
#: Busy pages rendered per Accept-Language header, at most this many kept per worker.
BUSY_CACHE = 64


class ClickPathMiddleware:
    """Admission control for every request, then the click path ahead of Flask."""

    def __init__(
        self,
        flask_wsgi: Any,
        gateway: ClickGateway,
        admission: Admission | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._next = flask_wsgi
        self._gateway = gateway
        self.admission = admission or Admission(1 << 30, 1 << 30)
        self._metrics = metrics or gateway.metrics
        self._busy: dict[str, Answer] = {}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        admission = self.admission
        if path.startswith(PREFIX) and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            token = path[len(PREFIX) :]
            if token and "/" not in token:
                if not admission.enter(admission.click_limit, admission.click_wait):
                    self._metrics.shed("click")
                    return self.busy(environ)(environ, start_response)
                started = time.perf_counter()
                try:
                    answer = serve_click(self._gateway, token, environ)
                finally:
                    admission.leave()
                self._metrics.latency.observe(time.perf_counter() - started + queue_wait())
                return answer(environ, start_response)
        if path in UNSHED:
            found: Iterable[bytes] = self._next(environ, start_response)
            return found
        if not admission.enter(admission.other_limit, admission.other_wait):
            self._metrics.shed("other")
            return self.shed_other(path, environ)(environ, start_response)
        try:
            # Counted until the app returns its body; media bodies are bytes already.
            found = self._next(environ, start_response)
        finally:
            admission.leave()
        return found

    def busy(self, environ: Environ) -> Answer:
        """The busy page with 503 and Retry-After, rendered once per language and kept: a shed
        request must cost next to nothing."""
        language = environ.get("HTTP_ACCEPT_LANGUAGE", "")[:64]
        answer = self._busy.get(language)
        if answer is None:
            try:
                answer = self._gateway.busy(environ, RETRY_AFTER)
            except Exception:
                log.exception("busy page failed")
                return _PLAIN_BUSY
            if len(self._busy) < BUSY_CACHE:
                self._busy[language] = answer
        return answer

    def shed_other(self, path: str, environ: Environ) -> Answer:
        if path.startswith("/api/"):
            return _API_BUSY
        return self.busy(environ)


_RETRY = ("Retry-After", str(RETRY_AFTER))
_PLAIN_BUSY = Answer(503, [("Content-Type", "text/plain"), _RETRY], b"busy, try again")
_API_BUSY = Answer(
    503,
    [("Content-Type", "application/json"), ("Cache-Control", "no-store"), _RETRY],
    orjson.dumps(
        {"error": "overloaded", "message": "refgate is shedding load; retry after a moment"}
    ),
)


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
