"""Webhook pages (marketing, admin, as the API's webhooks): the endpoints, registering one, an
endpoint's settings and delivery log, editing them, disabling, enabling, rotating its secret,
deleting it.

Every change goes through gateway.webhooks (the service the API calls), so the URL rules
(private and loopback hosts refused...) are the API's. Signing secrets are shown on the response
that made them; the forms that make them carry a one-time id, so sending one again (a reload, a
double click) makes nothing new instead of a second endpoint or a second rotation. The same user
sending it again gets what the first sending made (the endpoint's page with that secret, while
it is still the current one: a double click's browser shows the second response only); anyone
else, or once the secret changed again, a 409.
"""

from __future__ import annotations

import re

from flask import abort, flash, get_flashed_messages, redirect, render_template, request, url_for
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
_SEPARATORS = re.compile(r"[\s,，、;；]+")
#: What a failed attempt's stored error (urllib3's exception, as gateway.webhooks._post writes it)
#: says, in a few words: the first pattern found in it decides.
_FAILURES = (
    (re.compile(r"^refused: the host resolves to "), N_("refused: the host has a private address")),
    (re.compile(r"TimeoutError|timed out", re.I), N_("timed out")),
    (
        re.compile(
            r"NameResolutionError|Failed to resolve|Name or service not known|"
            r"nodename nor servname|name resolution|No address associated",
            re.I,
        ),
        N_("host name not resolved"),
    ),
    (re.compile(r"Connection refused|Errno 111\b", re.I), N_("connection refused")),
    (re.compile(r"SSLError|SSL:|CERTIFICATE_VERIFY_FAILED|certificate", re.I), N_("TLS error")),
    (
        re.compile(r"Connection (reset|aborted)|RemoteDisconnected|ProtocolError", re.I),
        N_("the connection was closed"),
    ),
    (re.compile(r"NewConnectionError|Errno", re.I), N_("could not connect")),
)
_HTTP_STATUS = re.compile(r"^HTTP (?P<status>\d{3})$")


def failure(error: str) -> str:
    """A failed delivery's error (as stored and as the API gives it: the exception's text, or
    ``HTTP <status>``) in a few words of the reader's language; an unknown one as it is."""
    status = _HTTP_STATUS.match(error)
    if status is not None:
        return str(_("HTTP status %(status)s", status=status.group("status")))
    for pattern, text in _FAILURES:
        if pattern.search(error):
            return str(_(text))
    return error


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
        results=get_flashed_messages(),
    )
    return body, status


def _detail_page(
    endpoint: Endpoint,
    secret: str = "",
    created: bool = False,
    form: dict[str, object] | None = None,
    errors: dict[str, str] | None = None,
) -> str:
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
        failure=failure,
        form=form or _form_of(endpoint),
        errors=errors or {},
        form_id=new_form_id(),
        results=get_flashed_messages(category_filter=["message"]),
        problems=get_flashed_messages(category_filter=["warning"]),
    )


@bp.get("/webhooks")
@roles(*MARKETING)
def webhooks() -> Page:
    return _list_page()


@bp.post("/webhooks")
@roles(*MARKETING)
def create_webhook() -> Page:
    form = _sent_form()
    document = _document(form)
    hooks = services().webhooks
    try:
        endpoint, secret = hooks.create(
            document, user().actor, form_id=request.form.get("form_id", "")
        )
    except AlreadyCreated as exc:
        made = hooks.made_by_form(exc, user().actor)
        if made is not None:
            # The same user's second click: the browser shows this response, not the first's.
            return _detail_page(made, made.secret, created=True)
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


def _sent_form() -> dict[str, object]:
    """The endpoint form's fields as typed and ticked (shown again when refused)."""
    return {
        "url": request.form.get("url", ""),
        "events": request.form.getlist("events"),
        "campaigns": request.form.get("campaigns", ""),
        "description": request.form.get("description", ""),
    }


def _form_of(endpoint: Endpoint) -> dict[str, object]:
    """An endpoint's settings as the form shows them (the edit form starts from them)."""
    return {
        "url": endpoint.url,
        "events": endpoint.events,
        "campaigns": ", ".join(endpoint.campaigns),
        "description": endpoint.description,
    }


def _document(form: dict[str, object]) -> dict[str, object]:
    """The form as the service takes it: campaign slugs split on commas and spaces (Chinese
    ones too); none, every campaign."""
    slugs = [s for s in _SEPARATORS.split(str(form["campaigns"])) if s]
    return {
        "url": form["url"],
        "events": form["events"],
        "campaigns": slugs or None,
        "description": form["description"],
    }


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


@bp.post("/webhooks/<endpoint_id>/edit")
@roles(*MARKETING)
def edit_webhook(endpoint_id: str) -> Page:
    endpoint = _endpoint(endpoint_id)
    form = _sent_form()
    current = _document(_form_of(endpoint))
    changes = {k: v for k, v in _document(form).items() if v != current[k]}
    if changes:
        try:
            updated = services().webhooks.update(endpoint.id, changes, user().actor)
        except ApiError as exc:
            return _detail_page(endpoint, form=form, errors=_form_errors(exc)), exc.status
        audit(
            "webhook.edit",
            endpoint.id,
            **{k: getattr(updated, k) for k in changes},
        )
        flash(_("The endpoint's settings were saved."))
    return redirect(url_for("console.webhook", endpoint_id=endpoint.id))


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
    hooks = services().webhooks
    try:
        rotated, secret = hooks.rotate_secret(
            endpoint.id,
            {"expire_previous_after": int(raw)},
            user().actor,
            form_id=request.form.get("form_id", ""),
        )
    except AlreadyCreated as exc:
        made = hooks.made_by_form(exc, user().actor)
        if made is not None and made.id == endpoint.id:
            # The same user's second click, and what the first made is still the secret.
            return _detail_page(made, made.secret)
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
    if len(event_id) > 100:
        abort(400)  # not an event id; it would be said back in the session's cookie
    try:
        services().webhooks.redeliver(endpoint.id, event_id)
    except ApiError as exc:
        if exc.code != "delivery_not_found":
            raise
        # Redelivered already (a second tab, a double click) or delivered meanwhile: said on
        # the endpoint's page, where its log shows what happened.
        flash(translated(exc.message), "warning")
    else:
        audit("webhook.redeliver", endpoint.id, event_id=event_id)
        flash(_("Event %(id)s is queued again: the next delivery run sends it.", id=event_id))
    return redirect(url_for("console.webhook", endpoint_id=endpoint.id))


@bp.route("/webhooks/<endpoint_id>/delete", methods=["GET", "POST"])
@roles(*MARKETING)
def delete_webhook(endpoint_id: str) -> Page:
    endpoint = _endpoint(endpoint_id)
    if request.method == "GET":
        return render_template("console/webhook_delete.html", hook=endpoint)
    services().webhooks.delete(endpoint.id)
    audit("webhook.delete", endpoint.id, url=endpoint.url)
    flash(_("Endpoint %(id)s was deleted.", id=endpoint.id))
    return redirect(url_for("console.webhooks"))
