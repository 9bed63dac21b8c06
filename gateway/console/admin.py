"""Admin pages: staff accounts, API keys, the audit log."""

from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from gateway.apikeys import AlreadyCreated, ApiKey, Role, new_form_id
from gateway.console import ADMIN, audit, bp, roles, user
from gateway.console.messages import translated
from gateway.services import services
from gateway.users import STAFF_ROLES, UserError
from gateway.validation import ascii_digits

Page = Response | tuple[str, int] | str


def _users_page(errors: dict[str, str] | None = None, form: dict[str, str] | None = None) -> Page:
    body = render_template(
        "console/users.html",
        users=services().users.list(),
        roles=STAFF_ROLES,
        errors=errors or {},
        form=form or {},
    )
    return (body, 400) if errors else body


@bp.get("/admin/users")
@roles(*ADMIN)
def users() -> Page:
    return _users_page()


@bp.post("/admin/users")
@roles(*ADMIN)
def add_user() -> Page:
    form = {k: request.form.get(k, "") for k in ("email", "role")}
    try:
        created = services().users.add(
            form["email"], form["role"], request.form.get("password", "")
        )
    except UserError as exc:
        return _users_page({exc.field: translated(exc.message)}, form)
    audit("user.add", created.email, role=created.role)
    return redirect(url_for("console.users"))


@bp.post("/admin/users/<path:email>")
@roles(*ADMIN)
def change_user(email: str) -> Page:
    found = services().users
    if found.get(email) is None:
        abort(404)
    action = request.form.get("action", "")
    try:
        if action in ("disable", "enable", "role") and email == user().email:
            # An admin locking themselves out (or the last admin demoting themselves) would
            # leave nobody to undo it from the console.
            if action == "role":
                return _users_page({"action": _("You cannot change your own role.")})
            return _users_page({"action": _("You cannot disable your own account.")})
        if action in ("disable", "enable"):
            found.set_disabled(email, action == "disable")
        elif action == "reset":
            found.reset_password(email, request.form.get("password", ""))
        elif action == "role":
            found.set_role(email, request.form.get("role", ""))
        else:
            return _users_page({"action": _("Disable, enable, reset or role.")})
    except UserError as exc:
        # Said at the top, naming the account: under a field it would sit in the form to add
        # a user, not in this account's row.
        said = _("%(label)s: %(value)s", label=email, value=translated(exc.message))
        return _users_page({"action": said})
    detail = {"role": request.form.get("role", "")} if action == "role" else {}
    audit(f"user.{action}", email, **detail)
    return redirect(url_for("console.users"))


def _apikeys_page(
    created: tuple[str, ApiKey] | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> str:
    # Each rendering carries a fresh form id: the form it shows creates one key, however often
    # the browser sends it.
    return render_template(
        "console/apikeys.html",
        keys=services().api_keys.list(),
        roles=[r.value for r in Role],
        created=created,
        error=error,
        form=form or {},
        form_id=new_form_id(),
    )


@bp.get("/admin/apikeys")
@roles(*ADMIN)
def apikeys() -> Page:
    return _apikeys_page()


@bp.post("/admin/apikeys")
@roles(*ADMIN)
def create_apikey() -> Page:
    found = services().api_keys
    name, role = request.form.get("name", ""), request.form.get("role", "")
    try:
        plaintext, key = found.create(name, role, form_id=request.form.get("form_id", ""))
    except AlreadyCreated as exc:
        # A reload of the page that showed the secret: the secret is gone (only its digest is
        # kept), and a second key would be one nobody knows about.
        message = _(
            "This form was sent already and created key %(key)s; its secret was shown once. "
            "Nothing new was created.",
            key=exc.created_id or "…",
        )
        return _apikeys_page(error=message), 409
    except ValueError as exc:
        error = translated(str(exc)) if role in {r.value for r in Role} else _("Unknown role.")
        return _apikeys_page(error=error, form={"name": name, "role": role}), 400
    audit("apikey.create", key.id, name=key.name, role=key.role.value)
    # Shown once, on this response only (no-store): only its digest is kept.
    return _apikeys_page(created=(plaintext, key))


@bp.post("/admin/apikeys/<key_id>/disable")
@roles(*ADMIN)
def disable_apikey(key_id: str) -> Page:
    try:
        key = services().api_keys.disable(key_id)
    except KeyError:
        abort(404)
    audit("apikey.disable", key.id, name=key.name)
    return redirect(url_for("console.apikeys"))


@bp.get("/admin/audit")
@roles(*ADMIN)
def audit_log() -> Page:
    before = request.args.get("before") or None
    if before is not None and not _stream_id(before):
        abort(400)
    actor = request.args.get("actor", "").strip() or None
    if actor is not None and ":" not in actor:
        actor = f"user:{actor.lower()}"  # a staff member's address, as the log names them
    entries = services().audit.recent(limit=100, before=before, actor=actor)
    return render_template("console/audit.html", entries=entries, actor=actor or "")


def _stream_id(value: str) -> bool:
    left, sep, right = value.partition("-")
    return bool(sep) and ascii_digits(left) and ascii_digits(right) and len(value) < 40
