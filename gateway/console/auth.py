"""Signing in and out, and the user's own settings."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response

from gateway.apikeys import Role
from gateway.console import ADMIN, SESSION_ID, STAFF, audit, bp, client_ip, roles, user
from gateway.console.messages import translated
from gateway.services import services
from gateway.users import LOCALES, UserError


@bp.get("/")
@roles(*STAFF)
def index() -> Response:
    role = user().role
    if role == Role.RISK.value:
        return redirect(url_for("console.flags"))
    return redirect(url_for("console.campaigns"))


def _safe_next(target: str | None) -> str:
    """Only a page inside the console: never an open redirect. A form's address (a sign-in asked
    for when a form was sent: its POST was not made) becomes the page the form is on, its
    parent: /console/flags/<id>/decision goes back to the flag, not to a 405."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/console/"):
            adapter = current_app.url_map.bind("")
            path = parts.path
            while path.startswith("/console/"):
                try:
                    adapter.match(path, method="GET")
                except MethodNotAllowed:
                    path = path.rsplit("/", 1)[0]
                    continue
                except HTTPException:  # no such page (a redirect to the slash form included)
                    break
                return path + (f"?{parts.query}" if path == parts.path and parts.query else "")
    return url_for("console.index")


def _refused(locked: str) -> str:
    """What a login refused by a lockout (gateway.users.LoginThrottle.locked) is told."""
    if locked == "pair":
        message = _(
            "Too many failed attempts for this account from your network. Try again in 15 minutes."
        )
    elif locked == "network":
        message = _("Too many failed attempts from your network. Try again in 15 minutes.")
    else:
        message = _("Too many failed attempts for this account. Try again in 15 minutes.")
    return str(message)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(url_for("console.index"))
        return render_template("console/login.html", email="", error=None)
    found = services()
    email = request.form.get("email", "").strip().lower()[:320]
    password = request.form.get("password", "")
    network = found.audit.network_hash(client_ip())
    locked = found.logins.locked(email, network)
    if locked is not None:
        if found.logins.first_refusal(locked, email, network):
            found.audit.record(
                f"user:{email}", "login.refused", email, client_ip(), {"locked": locked}
            )
        return render_template("console/login.html", email=email, error=_refused(locked)), 429
    account = found.users.verify(email, password)
    if account is None:
        found.logins.failed(email, network)
        found.audit.record(f"user:{email}", "login.failed", email, client_ip())
        error = _("Wrong email or password, or the account is disabled.")
        return render_template("console/login.html", email=email, error=error), 401
    found.logins.succeeded(email, network)
    # A new session for whoever signs in: forms opened under the session before (another
    # user's, in another tab) carry its CSRF token and are refused, not made in this name.
    session.clear()
    login_user(account)
    session[SESSION_ID] = found.users.open_session(account.email)
    audit("login", account.email)
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        audit("logout", user().email)
        logout_user()
    services().users.close_session(session.get(SESSION_ID))
    session.clear()  # the CSRF token too: a form left open in another tab is void
    return redirect(url_for("console.login"))


@bp.route("/settings", methods=["GET", "POST"])
@roles(*STAFF, *ADMIN)
def settings() -> Response | tuple[str, int] | str:
    if request.method == "POST":
        locale = request.form.get("locale", "")
        try:
            services().users.set_locale(user().email, locale)
        except UserError as exc:
            return render_template(
                "console/settings.html", locales=LOCALES, error=translated(exc.message)
            ), 400
        audit("user.locale", user().email, locale=locale)
        return redirect(url_for("console.settings"))
    return render_template("console/settings.html", locales=LOCALES, error=None)
