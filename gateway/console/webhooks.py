"""Webhook pages (marketing, admin, as the API's webhooks): the endpoints, registering one, an
endpoint's settings and delivery log, disabling, enabling, rotating its secret, deleting it.

Every change goes through gateway.webhooks (the service the API calls), so the URL rules
(private and loopback hosts refused...) are the API's. Signing secrets are shown once, on the
response that made them; the forms that make them carry a one-time id, so a reload of that page
makes nothing new (409) instead of a second endpoint or a second rotation.
"""

from __future__ import annotations

import re

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from gateway.apikeys import AlreadyCreated, new_form_id
from gateway.console import MARKETING, audit, bp, roles, user
from gateway.console.messages import translated, translated_fields
from gateway.errors import ApiError
from gateway.i18n import N_
from gateway.services import services
from gateway.validation import ascii_digits
from gateway.webhooks import EVENTS, ROTATION_OVERLAP, Endpoint

Page = Response | tuple[str, int] | str

#: What each event tells a receiver, as the form describes it.
EVENT_TEXTS = {
    "conversion.created": N_("a conversion was recorded"),
    "reward.credited": N_("a reward was credited"),
    "reward.held": N_("a reward was held for review"),
    "reward.denied": N_("a reward was denied"),
    "reward.clawed_back": N_("a credited reward was clawed back"),
    "flag.raised": N_("a fraud flag was raised"),
}
assert tuple(EVENT_TEXTS) == EVENTS, "an event is missing above"
#: How long the previous secret keeps signing after a rotation (seconds), as offered.
OVERLAPS = (ROTATION_OVERLAP, 3600, 7 * 86400, 0)
#: Delivery log entries and failed events an endpoint's page shows.
LOG_ROWS = 50
FIELDS = ("url", "events", "campaigns", "description")
_SEPARATORS = re.compile(r"[\s,，、]+")


def _endpoint(endpoint_id: str) -> Endpoint:
    found = services().webhooks.get(endpoint_id)
    if found is None:
        abort(404)
    return found


def _list_page(
    form: dict[str, object] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Page:
    hooks = services().webhooks
    # Each rendering carries a fresh form id: the form it shows registers one endpoint, however
    # often the browser sends it.
    body = render_template(
        "console/webhooks.html",
        endpoints=[hooks.summary(e) for e in hooks.endpoints()],
        events=EVENT_TEXTS,
        form=form or {"url": "", "events": [], "campaigns": "", "description": ""},
        errors=errors or {},
        form_id=new_form_id(),
    )
    return body, status


def _detail_page(endpoint: Endpoint, secret: str = "", created: bool = False) -> str:
    hooks = services().webhooks
    return render_template(
        "console/webhook.html",
        hook=hooks.summary(endpoint),
        deliveries=hooks.deliveries(endpoint.id, limit=LOG_ROWS),
        failed=hooks.failed(endpoint.id, limit=LOG_ROWS),
        events=EVENT_TEXTS,
        secret=secret,
        created=created,
        overlaps=OVERLAPS,
        form_id=new_form_id(),
    )


@bp.get("/webhooks")
@roles(*MARKETING)
def webhooks() -> Page:
    return _list_page()


@bp.post("/webhooks")
@roles(*MARKETING)
def create_webhook() -> Page:
    form: dict[str, object] = {
        "url": request.form.get("url", ""),
        "events": request.form.getlist("events"),
        "campaigns": request.form.get("campaigns", ""),
        "description": request.form.get("description", ""),
    }
    slugs = [s for s in _SEPARATORS.split(str(form["campaigns"])) if s]
    document = {
        "url": form["url"],
        "events": form["events"],
        "campaigns": slugs or None,
        "description": form["description"],
    }
    try:
        endpoint, secret = services().webhooks.create(
            document, user().actor, form_id=request.form.get("form_id", "")
        )
    except AlreadyCreated as exc:
        # A reload of the page that showed the secret: the secret was shown once, and a second
        # endpoint would receive every event twice.
        message = _(
            "This form was sent already and registered endpoint %(id)s; its signing secret was "
            "shown once. Nothing new was registered.",
            id=exc.created_id or "…",
        )
        return _list_page(errors={"form": message}, status=409)
    except ApiError as exc:
        return _list_page(form, _form_errors(exc), exc.status)
    audit(
        "webhook.create",
        endpoint.id,
        url=endpoint.url,
        events=endpoint.events,
        campaigns=endpoint.campaigns,
    )
    return _detail_page(endpoint, secret, created=True)


def _form_errors(exc: ApiError) -> dict[str, str]:
    """The service's field errors under the form's fields (``events.0`` under events); the rest
    (a damaged form, too many endpoints) at the top."""
    errors: dict[str, str] = {}
    for name, message in translated_fields(exc.fields).items():
        field = name.partition(".")[0]
        errors.setdefault(field if field in FIELDS else "form", message)
    if not errors:
        errors["form"] = translated(exc.message)
    return errors


@bp.get("/webhooks/<endpoint_id>")
@roles(*MARKETING)
def webhook(endpoint_id: str) -> Page:
    return _detail_page(_endpoint(endpoint_id))


@bp.post("/webhooks/<endpoint_id>/action")
@roles(*MARKETING)
def webhook_action(endpoint_id: str) -> Page:
    endpoint = _endpoint(endpoint_id)
    action = request.form.get("action", "")
    if action not in ("disable", "enable"):
        abort(400)
    services().webhooks.update(endpoint.id, {"disabled": action == "disable"}, user().actor)
    audit(f"webhook.{action}", endpoint.id)
    return redirect(url_for("console.webhook", endpoint_id=endpoint.id))


@bp.post("/webhooks/<endpoint_id>/rotate")
@roles(*MARKETING)
def rotate_webhook(endpoint_id: str) -> Page:
    endpoint = _endpoint(endpoint_id)
    raw = request.form.get("expire_previous_after", str(ROTATION_OVERLAP))
    if not ascii_digits(raw) or int(raw) not in OVERLAPS:
        abort(400)
    try:
        rotated, secret = services().webhooks.rotate_secret(
            endpoint.id,
            {"expire_previous_after": int(raw)},
            user().actor,
            form_id=request.form.get("form_id", ""),
        )
    except AlreadyCreated:
        # A reload of the page that showed the new secret: rotating again would drop the
        # secret receivers still check with.
        message = _(
            "This form rotated the secret already; the new secret was shown once. Nothing was "
            "changed."
        )
        raise ApiError(409, "already_rotated", message) from None
    audit("webhook.rotate", rotated.id, expire_previous_after=int(raw))
    return _detail_page(rotated, secret)


@bp.post("/webhooks/<endpoint_id>/redeliver")
@roles(*MARKETING)
def redeliver_webhook(endpoint_id: str) -> Page:
    endpoint = _endpoint(endpoint_id)
    event_id = request.form.get("event_id", "")
    services().webhooks.redeliver(endpoint.id, event_id)
    audit("webhook.redeliver", endpoint.id, event_id=event_id)
    return redirect(url_for("console.webhook", endpoint_id=endpoint.id))


@bp.route("/webhooks/<endpoint_id>/delete", methods=["GET", "POST"])
@roles(*MARKETING)
def delete_webhook(endpoint_id: str) -> Page:
    endpoint = _endpoint(endpoint_id)
    if request.method == "GET":
        return render_template("console/webhook_delete.html", hook=endpoint)
    services().webhooks.delete(endpoint.id)
    audit("webhook.delete", endpoint.id, url=endpoint.url)
    return redirect(url_for("console.webhooks", deleted=endpoint.id))
