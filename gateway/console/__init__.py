"""The staff console: server-rendered pages for marketing, risk and admins under ``/console``.

Sessions are flask-login's (the user id carries the account's session version, see
gateway.users), CSRF tokens flask-wtf's, checked on every unsafe request of this blueprint.
Every hook here is the blueprint's: the click path and the API pay for none of it. Pages call the
same services the JSON API calls (gateway.services); nothing here re-implements their rules.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, abort, current_app, g, render_template, request, session
from flask_babel import gettext as _
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response
from wtforms import ValidationError

from gateway.apikeys import Role
from gateway.console.messages import translated
from gateway.errors import ApiError
from gateway.flags import flag_id_for
from gateway.services import services
from gateway.users import StaffUser

log = logging.getLogger(__name__)
bp = Blueprint("console", __name__, url_prefix="/console")

F = TypeVar("F", bound=Callable[..., Any])

MARKETING = (Role.MARKETING.value,)
RISK = (Role.RISK.value,)
STAFF = (Role.MARKETING.value, Role.RISK.value)
ADMIN: tuple[str, ...] = ()


def roles(*allowed: str) -> Callable[[F], F]:
    """Signed-in staff whose role is one of ``allowed`` (admin always is); anonymous visitors go
    to the login page, other roles get 403."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if current_user.role != Role.ADMIN.value and current_user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        wrapper.console_roles = (Role.ADMIN.value, *allowed)  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def user() -> StaffUser:
    found: StaffUser = current_user._get_current_object()
    return found


def client_ip() -> str:
    return request.remote_addr or ""


def audit(action: str, target: str = "", **detail: Any) -> None:
    services().audit.record(user().actor, action, target, client_ip(), detail or None)


def can(*allowed: str) -> bool:
    """For templates: may the signed-in user use pages for these roles?"""
    return current_user.is_authenticated and (
        current_user.role == Role.ADMIN.value or current_user.role in allowed
    )


# -- hooks of this blueprint only ------------------------------------------------------------


@bp.before_request
def _before() -> None:
    g.csp_nonce = secrets.token_urlsafe(16)
    if current_user.is_authenticated and current_user.locale:
        g.locale = current_user.locale  # read by gateway.i18n.select_locale
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError as exc:
            raise CSRFError(str(exc)) from None


#: Scripts only with this response's nonce; styles and images from this origin (SVG charts are
#: inline markup with presentation attributes, QR previews are same-origin images).
CSP = (
    "default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@bp.after_request
def _security_headers(response: Response) -> Response:
    nonce = getattr(g, "csp_nonce", None) or secrets.token_urlsafe(16)
    response.headers["Content-Security-Policy"] = CSP.format(nonce=nonce)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    response.vary.add("Cookie")
    return response


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    return {
        "csrf_token": generate_csrf,
        "csp_nonce": lambda: g.csp_nonce,
        "current_user": current_user,
        "can": can,
        "flag_id_for": flag_id_for,
        "MARKETING": MARKETING,
        "RISK": RISK,
        "STAFF": STAFF,
        "ADMIN": ADMIN,
    }


@bp.app_template_filter("console_time")
def console_time(value: float | None) -> str:
    """A unix time as "2026-02-01 08:00:00 UTC" (staff across timezones read the same)."""
    if not value:
        return ""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _error_page(status: int, title: str, message: str) -> tuple[str, int]:
    context = {} if request.blueprint == bp.name else _template_globals()
    page = render_template("console/error.html", title=title, message=message, **context)
    return page, status


@bp.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError) -> tuple[str, int]:
    return _error_page(
        400,
        _("The form expired"),
        _("The form was missing its security token or it expired. Go back, reload and retry."),
    )


@bp.errorhandler(403)
def _forbidden(exc: Exception) -> tuple[str, int]:
    return _error_page(403, _("Not allowed"), _("Your role cannot open this page."))


@bp.errorhandler(404)
def _not_found(exc: Exception) -> tuple[str, int]:
    return _error_page(404, _("Not found"), _("There is nothing here."))


def http_error_page(exc: HTTPException) -> Response:
    """A console page for an HTTP error anywhere under /console, the router's included (an
    unknown address, a form's address opened as a page): the app's handler calls this, as
    blueprint handlers never see routing errors."""
    routed = request.blueprint == bp.name
    if not routed:
        # The router's error (no console view ran): the blueprint's hooks and template globals
        # did not either, so they are applied here.
        g.csp_nonce = secrets.token_urlsafe(16)
        if current_user.is_authenticated and current_user.locale:
            g.locale = current_user.locale
    code = exc.code or 500
    if code == 403:
        body, status = _forbidden(exc)
    elif code == 404:
        body, status = _not_found(exc)
    elif code == 405:
        body, status = _error_page(
            405, _("Not possible"), _("This address does not take that kind of request.")
        )
    elif code == 400:
        body, status = _error_page(
            400,
            _("Not understood"),
            _("The address or the form is not what this page takes. Go back and retry."),
        )
    else:
        body, status = _error_page(code, exc.name, exc.description or "")
    response = Response(body, status, content_type="text/html; charset=utf-8")
    if code == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return response if routed else _security_headers(response)


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[str, int]:
    return _error_page(exc.status, _("Not possible"), translated(exc.message))


@bp.errorhandler(RedisError)
def _store_unavailable(exc: RedisError) -> tuple[str, int, dict[str, str]]:
    """Fail closed, as the API does: a clear 503 page, nothing changed."""
    log.warning("store unavailable for %s %s: %s", request.method, request.path, exc)
    services().metrics.store_error("console")
    # Who is signed in is read from the store, which just failed: the page shows no menu, as
    # for a visitor who is not signed in, rather than asking the store again.
    g._login_user = current_app.login_manager.anonymous_user()  # type: ignore[attr-defined]
    body, status = _error_page(
        503,
        _("The store is unavailable"),
        _("refgate cannot reach its store right now: nothing was changed. Try again shortly."),
    )
    return body, status, {"Retry-After": "5"}


#: The session cookie's key holding the store's id of the session (gateway.users).
SESSION_ID = "rg_session"


def _load_user(user_id: str) -> StaffUser | None:
    """The signed-in account, while its session is open in the store: signing out (or the end
    of the working day) ends the session for every copy of its cookie."""
    users = services().users
    found = users.from_session(user_id)
    if found is None or not users.session_open(session.get(SESSION_ID), found.email):
        return None
    return found


# -- setup -------------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    from gateway.console.labels import label
    from gateway.console.reasons import translated_reason

    # Filters, not per-request hooks: they cost nothing until a console template uses them.
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["reason"] = translated_reason
    manager = LoginManager()
    # Not manager.init_app(app): that adds an app-wide after_request hook (for remember-me
    # cookies, which the console does not use) and a context processor to every template.
    app.login_manager = manager  # type: ignore[attr-defined]
    manager.login_view = "console.login"
    manager.login_message = ""
    manager.session_protection = "strong"
    manager.user_loader(_load_user)

    from gateway.console import admin, auth, marketing, risk, webhooks  # noqa: F401  (routes)

    app.register_blueprint(bp)
