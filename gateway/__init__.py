"""refgate: a share-link and anti-abuse gateway."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from gateway import i18n
from gateway.clickpath import HSTS
from gateway.fastpath import ClickPathMiddleware, FlaskPageRenderer
from gateway.services import Services
from gateway.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _asset_dir(env_name: str, default: str) -> str:
    # templates/ and static/ sit beside the packages; a container sets these variables.
    return os.environ.get(env_name) or str(PROJECT_ROOT / default)


def default_data_dir() -> Path:
    """Flask's instance folder: where the embedded store and spool live unless configured."""
    return Path(Flask(__name__).instance_path)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``test_config`` may hold Flask config keys and REFGATE_*/REDIS_URL values,
    which take precedence over the environment."""
    app = Flask(
        __name__,
        template_folder=_asset_dir("REFGATE_TEMPLATE_DIR", "templates"),
        static_folder=_asset_dir("REFGATE_STATIC_DIR", "static"),
        instance_relative_config=True,
    )
    overrides = dict(test_config or {})
    env = {**os.environ, **{k: str(v) for k, v in overrides.items() if _is_setting(k)}}
    settings = Settings.from_env(env, default_data_dir=Path(app.instance_path))
    app.config.from_mapping(
        SECRET_KEY=settings.secret_keys[0],
        # Rotating the keys (a new one prepended, README) must not sign every member of staff
        # out mid-festival: sessions signed with an older key still verify.
        SECRET_KEY_FALLBACKS=list(settings.secret_keys[1:]),
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=2 << 20,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        # A console form stays good for a working day, not flask-wtf's hour: a reviewer leaves
        # the queue open between flags, and an expired form loses the note being written. The
        # token is still bound to the signed-in session (signing out voids it).
        WTF_CSRF_TIME_LIMIT=CONSOLE_FORM_HOURS * 3600,
        # Console forms verify with every listed key as sessions do (flask-wtf signs with
        # SECRET_KEY alone, and a rotation turned each form open at that moment, a reviewer's
        # note included, into "the form expired"). itsdangerous signs with the last of a list.
        WTF_CSRF_SECRET_KEY=list(reversed(settings.secret_keys)),
        # The oldest session cookie accepted (Flask's default is 31 days, signed out or not);
        # the store's record of the session (gateway.users) ends it at sign-out.
        PERMANENT_SESSION_LIFETIME=timedelta(hours=CONSOLE_FORM_HOURS),
    )
    app.config.update({k: v for k, v in overrides.items() if not _is_setting(k)})
    i18n.init_app(app)
    # Process-wide, like the worker it serves in (each gunicorn worker builds its own app).
    sys.setswitchinterval(settings.gil_switch_interval)
    # Periodic jobs run in served workers unless a jobs process runs them (refgate serve);
    # tests drive them directly with their own clock.
    services = Services.open(
        settings,
        FlaskPageRenderer(app),
        run_jobs=settings.jobs_in_workers and not app.testing,
        run_local_jobs=not app.testing,
    )
    services.install(app)
    # Outermost first: the client address is fixed before the click path reads it.
    app.wsgi_app = ClickPathMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, services.gateway, services.admission, services.metrics
    )
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )

    from gateway.blueprints import api, health, media, share

    app.register_blueprint(share.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_error_handler(HTTPException, _http_error)
    # Every Flask response (console, API, media, pages and errors); the fast path's own answers
    # add it themselves (gateway.clickpath.Answer).
    app.after_request(_strict_transport_security)

    from gateway import console

    console.init_app(app)

    from gateway import cli

    cli.register(app)
    return app


#: What a share link's token or an invite code is made of (base64url, dots, dashes).
_LINKISH = re.compile(r"[A-Za-z0-9_.-]{1,120}")

#: How long a console page's form can be sent after the page was shown.
CONSOLE_FORM_HOURS = 12


def _is_setting(name: str) -> bool:
    return name.startswith("REFGATE_") or name == "REDIS_URL"


def _strict_transport_security(response: Response) -> Response:
    """HSTS over https only (see gateway.clickpath.HSTS)."""
    if request.environ.get("wsgi.url_scheme") == "https":
        response.headers[HSTS[0]] = HSTS[1]
    return response


def _http_error(exc: HTTPException) -> Response | HTTPException:
    """JSON errors under /api; the console's own pages under /console; the default HTML pages
    elsewhere."""
    if request.path == "/console" or request.path.startswith("/console/"):
        from gateway.console import http_error_page

        return http_error_page(exc)
    if exc.code == 404 and request.path.startswith(("/s/", "/c/")):
        # A share link or code copied with something extra (a trailing slash a chat app added,
        # a cut-off path): the link itself without the slash, else the branded page people get
        # for a link that does not work, not werkzeug's.
        token, slash, rest = request.path[3:].partition("/")
        # Only what a token or an invite code can be: anything else (a line break among them)
        # would be refused by werkzeug as a Location header, and answered with a 500.
        if slash and not rest and _LINKISH.fullmatch(token):
            target = request.path[:-1]
            return Response(status=301, headers={"Location": target, "Cache-Control": "no-store"})
        found: Services = current_app.extensions["refgate"]
        return found.gateway.page(request.environ, 404, "click/not_found.html").response()
    if request.path.startswith("/api/"):
        response = jsonify(
            error=(exc.name or "error").lower().replace(" ", "_"), message=exc.description
        )
        response.status_code = exc.code or 500
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response
    return exc
