"""Campaign pages: the list, create and edit, a campaign's statistics, platforms, minting links,
and the referral tree. Every write goes through the services the JSON API uses."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from gateway.blueprints import media
from gateway.blueprints.api import _platform_entry as platform_entry
from gateway.campaigns import Campaign, LinkRequest, validate
from gateway.console import MARKETING, STAFF, audit, bp, roles, user
from gateway.console.charts import bar_chart, line_chart
from gateway.console.labels import label
from gateway.console.messages import translated_fields
from gateway.downloads import content_disposition, link_file
from gateway.errors import ApiError
from gateway.platforms import PLATFORM_KEYS
from gateway.platforms import platform as known_platform
from gateway.platformwatch import clear_alert, open_alerts
from gateway.referrer_names import ReferrerNames
from gateway.services import services
from gateway.sharematerial import share_material
from gateway.stats import campaign_stats
from gateway.store import keys
from gateway.validation import ascii_digits

Page = Response | tuple[str, int] | str

#: Hours of history the campaign page charts.
CHART_HOURS = 48
FORM_FIELDS = (
    "slug",
    "name",
    "destination_url",
    "starts_at",
    "ends_at",
    "link_ttl_days",
    "reward.amount",
    "reward.budget_total",
    "reward.max_per_referrer",
    "reward.max_per_day",
    "share_text",
    "poster.title",
    "poster.text",
)


# -- the list ------------------------------------------------------------------------------------


@bp.get("/campaigns")
@roles(*STAFF)
def campaigns() -> Page:
    found = services()
    rows = []
    now = time.time()
    all_campaigns = found.campaigns.list()
    pipe = found.store.main.pipeline(transaction=False)
    for campaign in all_campaigns:
        pipe.hmget(keys.campaign_keys(campaign.id).counters, "clicks", "conversions")
        pipe.zcard(keys.campaign_keys(campaign.id).flags_open)
    replies = pipe.execute()
    for i, campaign in enumerate(all_campaigns):
        clicks, conversions = replies[2 * i]
        rows.append(
            {
                "campaign": campaign,
                "state": campaign.state_at(now),
                "clicks": int(clicks or 0),
                "conversions": int(conversions or 0),
                "open_flags": int(replies[2 * i + 1]),
                "alerts": len(open_alerts(found.store.main, campaign)),
            }
        )
    return render_template("console/campaigns.html", rows=rows)


# -- create and edit -----------------------------------------------------------------------------


def _form_values(campaign: Campaign | None) -> dict[str, str]:
    if campaign is None:
        return dict.fromkeys(FORM_FIELDS, "") | {"link_ttl_days": "30"}
    reward, poster = campaign.reward, campaign.poster
    return {
        "slug": campaign.slug,
        "name": campaign.name,
        "destination_url": campaign.destination_url,
        "starts_at": campaign.starts_at.isoformat() if campaign.starts_at else "",
        "ends_at": campaign.ends_at.isoformat() if campaign.ends_at else "",
        "link_ttl_days": str(campaign.link_ttl_days),
        "reward.amount": str(reward.amount) if reward else "",
        "reward.budget_total": str(reward.budget_total) if reward else "",
        "reward.max_per_referrer": str(reward.max_per_referrer or "") if reward else "",
        "reward.max_per_day": str(reward.max_per_day or "") if reward else "",
        "share_text": campaign.share_text or "",
        "poster.title": poster.title if poster else "",
        "poster.text": poster.text if poster else "",
        "version": str(campaign.version),
    }


def _document(form: dict[str, str], *, create: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON document the API would receive for this form; whole numbers are parsed here (the
    API takes JSON numbers), every other rule is the campaign service's."""
    errors: dict[str, str] = {}

    def number(name: str) -> int | None:
        raw = form[name].strip()
        if not raw:
            return None
        # A whole number, any sign and size: the service says which range the field takes
        # ("1 or more", "at most 3650") rather than a guess here.
        digits = raw.removeprefix("-")
        if not ascii_digits(digits) or len(digits) > 30:
            errors[name] = _("a whole number")
            return None
        return int(raw)

    doc: dict[str, Any] = {
        "name": form["name"],
        "destination_url": form["destination_url"].strip(),
        "starts_at": form["starts_at"].strip() or None,
        "ends_at": form["ends_at"].strip() or None,
        "share_text": form["share_text"] or None,
    }
    if create:
        doc["slug"] = form["slug"].strip()
    ttl = number("link_ttl_days")
    if ttl is not None:
        doc["link_ttl_days"] = ttl
    elif "link_ttl_days" not in errors:
        errors["link_ttl_days"] = _("required")
    reward = {
        k: number(f"reward.{k}")
        for k in ("amount", "budget_total", "max_per_referrer", "max_per_day")
    }
    if any(value is not None for value in reward.values()):
        # A limit without the amount and budget is refused for those (the service's "Field
        # required"), not dropped, nor taken on an edit as removing the reward.
        doc["reward"] = {k: v for k, v in reward.items() if v is not None}
    elif not create and not any(name.startswith("reward.") for name in errors):
        doc["reward"] = None
    if form["poster.title"].strip() or form["poster.text"].strip():
        doc["poster"] = {"title": form["poster.title"], "text": form["poster.text"]}
    elif not create:
        doc["poster"] = None
    return doc, errors


def _render_form(
    campaign: Campaign | None, form: dict[str, str], errors: dict[str, str], status: int = 200
) -> Page:
    warnings: dict[str, list[str]] = {}
    if campaign is not None:
        for warning in campaign.copy_warnings():
            said = _("%(label)s: %(value)s", label=warning.term, value=_(warning.rule))
            warnings.setdefault(warning.field, []).append(said)
    body = render_template(
        "console/campaign_form.html",
        campaign=campaign,
        form=form,
        errors=errors,
        warnings=warnings,
    )
    return (body, status) if status != 200 else body


def _form_errors(fields: dict[str, str]) -> dict[str, str]:
    """The service's field errors, translated, under the form's places for them: the poster's
    font (which the form does not ask for) is the poster's problem."""
    return {
        ("poster" if name == "poster.font" else name): message
        for name, message in translated_fields(fields).items()
    }


def _save(campaign: Campaign | None) -> Page:
    form = {name: request.form.get(name, "") for name in FORM_FIELDS}
    version = form["version"] = request.form.get("version", "")
    if campaign is not None:
        form["slug"] = campaign.slug
    doc, errors = _document(form, create=campaign is None)
    found = services()
    # All the form's problems at once: its own (whole numbers) and the service's for the rest
    # (a reward left out for a bad number is not a problem of its own).
    problems = _form_errors(found.campaigns.problems(doc, create=campaign is None))
    for name, message in problems.items():
        if not any(mine == name or mine.startswith(name + ".") for mine in errors):
            errors[name] = message
    if errors:
        return _render_form(campaign, form, errors, 400)
    try:
        if campaign is None:
            saved = found.campaigns.create(doc, user().actor)
        else:
            # The version the form was opened at: an edit saved by someone else meanwhile is a
            # conflict to reload, not overwritten with this form's older values.
            saved = found.campaigns.update(
                campaign.slug,
                doc,
                user().actor,
                expected_version=int(version) if ascii_digits(version) else None,
            )
    except ApiError as exc:
        errors = _form_errors(exc.fields or {"body": exc.message})
        return _render_form(campaign, form, errors, exc.status)
    audit("campaign.create" if campaign is None else "campaign.edit", saved.slug)
    if saved.copy_warnings():
        return redirect(url_for("console.edit_campaign", slug=saved.slug, saved=1))
    return redirect(url_for("console.campaign", slug=saved.slug))


@bp.route("/campaigns/new", methods=["GET", "POST"])
@roles(*MARKETING)
def new_campaign() -> Page:
    if request.method == "POST":
        return _save(None)
    return _render_form(None, _form_values(None), {})


@bp.route("/campaigns/<slug>/edit", methods=["GET", "POST"])
@roles(*MARKETING)
def edit_campaign(slug: str) -> Page:
    campaign = services().campaigns.require(slug)
    if request.method == "POST":
        return _save(campaign)
    return _render_form(campaign, _form_values(campaign), {})


@bp.post("/campaigns/<slug>/action")
@roles(*MARKETING)
def campaign_action(slug: str) -> Page:
    action = request.form.get("action", "")
    if action not in ("pause", "resume", "end"):
        abort(400)
    services().campaigns.update(slug, {"action": action}, user().actor)
    audit(f"campaign.{action}", slug)
    return redirect(url_for("console.campaign", slug=slug))


# -- a campaign's page ---------------------------------------------------------------------------


def _timeline(campaign: Campaign, now: float) -> tuple[list[str], dict[str, list[int]]]:
    hour = int(now) // 3600
    hours = list(range(hour - CHART_HOURS + 1, hour + 1))
    counters = {"clicks": _("clicks"), "clicks:link": _("link clicks"), "clicks:scan": _("scans")}
    fields = [f"{h}|{c}" for h in hours for c in counters]
    raw = services().store.main.hmget(keys.campaign_keys(campaign.id).timeline, fields)
    values = dict(zip(fields, (int(v or 0) for v in raw), strict=True))
    series = {label: [values[f"{h}|{c}"] for h in hours] for c, label in counters.items()}
    labels = [datetime.fromtimestamp(h * 3600, UTC).strftime("%m-%d %H:00") for h in hours]
    return labels, series


@bp.get("/campaigns/<slug>")
@roles(*STAFF)
def campaign(slug: str) -> Page:
    found = services()
    campaign = found.campaigns.require(slug)
    now = time.time()
    stats = campaign_stats(found.store.main, campaign)
    alerts = open_alerts(found.store.main, campaign)
    labels, series = _timeline(campaign, now)
    return render_template(
        "console/campaign.html",
        campaign=campaign,
        state=campaign.state_at(now),
        stats=stats,
        tree=found.tree.stats(campaign),
        budget=found.rewards.budget(campaign),
        platforms=[platform_entry(campaign, key, alerts) for key in PLATFORM_KEYS],
        alerts=alerts,
        clicks_chart=line_chart(_("Clicks per hour (UTC)"), labels, series),
        alert_names={key: platform_name(key) for key in alerts},
        platform_chart=bar_chart(
            _("Clicks per platform"), _by_name(stats["platforms"]), _("No data yet.")
        ),
        fallback_chart=bar_chart(
            _("Fallback views per platform"), _by_name(stats["fallback_views"]), _("No data yet.")
        ),
        decision_chart=bar_chart(
            _("Decisions"),
            {label(name): n for name, n in stats["decisions"].items()},
            _("No data yet."),
        ),
    )


def platform_name(key: str) -> str:
    """A platform's name in the reader's language (the stats and alerts keep its key)."""
    return _(known_platform(key).name) if key in PLATFORM_KEYS else key


def _by_name(counts: dict[str, int]) -> dict[str, int]:
    return {platform_name(key): n for key, n in counts.items()}


@bp.post("/campaigns/<slug>/platforms/<platform>")
@roles(*MARKETING, "risk")
def set_platform(slug: str, platform: str) -> Page:
    if platform not in PLATFORM_KEYS:
        abort(404)
    found = services()
    body: dict[str, Any] = {
        "status": request.form.get("status", ""),
        "note": request.form.get("note", ""),
    }
    campaign = found.campaigns.set_platform(slug, platform, body, user().actor)
    clear_alert(found.store.main, campaign, platform)
    audit("platform.set", f"{slug}/{platform}", status=body["status"])
    return redirect(url_for("console.campaign", slug=slug) + "#platforms")


# -- minting a sharer's link ---------------------------------------------------------------------


def _platform_names() -> list[tuple[str, str]]:
    return [(key, str(_(known_platform(key).name))) for key in PLATFORM_KEYS]


@bp.route("/campaigns/<slug>/links", methods=["GET", "POST"])
@roles(*MARKETING)
def mint(slug: str) -> Page:
    found = services()
    campaign = found.campaigns.require(slug)
    form = {"referrer": request.form.get("referrer", ""), "platform": request.form.get("platform")}
    if request.method == "GET":
        return render_template(
            "console/mint.html",
            campaign=campaign,
            form=form,
            errors={},
            minted=None,
            platforms=_platform_names(),
        )
    body = {k: v for k, v in form.items() if v}
    try:
        request_ = validate(LinkRequest, body, "invalid link request")
        if campaign.state_at(time.time()) == "ended":
            raise ApiError(409, "campaign_ended", _("The campaign has ended; no new links."))
        minted = found.links.mint(campaign, request_.referrer)
    except ApiError as exc:
        page = render_template(
            "console/mint.html",
            campaign=campaign,
            form=form,
            errors=translated_fields(exc.fields or {"referrer": exc.message}),
            minted=None,
            platforms=_platform_names(),
        )
        return page, exc.status
    audit("link.mint", f"{slug}/{minted.referrer}")
    material = share_material(campaign, minted, request_.platform)
    path = f"/s/{minted.token}"  # same-origin previews and downloads
    return render_template(
        "console/mint.html",
        campaign=campaign,
        form=form,
        errors={},
        minted=minted,
        material=material,
        platforms=_platform_names(),
        files={
            "png": f"{path}/qr.png?size=512",
            "svg": f"{path}/qr.svg",
            "poster": f"{path}/poster.png",
        },
        # Saved under the sharer's name, made safe as a file name (an id may be an email
        # address or carry ":"), by the console's own route: the public images never name the
        # sharer (anyone holding their link could read it).
        downloads={
            kind: (
                url_for("console.download", slug=slug, token=minted.token, file=file) + query,
                link_file(campaign.slug, minted.referrer, file),
            )
            for kind, file, query in (
                ("png", "qr.png", "?size=512"),
                ("svg", "qr.svg", ""),
                ("poster", "poster.png", ""),
            )
        },
    )


@bp.get("/campaigns/<slug>/links/<token>/<any('qr.png', 'qr.svg', 'poster.png'):file>")
@roles(*MARKETING)
def download(slug: str, token: str, file: str) -> Page:
    """A link's QR code or poster as an attachment named ``<slug>-<sharer>-<file>``: the public
    image (its checks: a revoked or expired link's images are gone), with its name."""
    found = services().media.find(token)
    if found is None or found[1].slug != slug:
        abort(404)
    link, campaign = found
    answer = media.poster(token) if file == "poster.png" else media.qr_code(token, file[3:])
    if answer.status_code == 200:
        names = ReferrerNames(services().store.main, campaign.id).names([link.referrer_id])
        sharer = names.get(link.referrer_id) or str(link.referrer_id)
        answer.headers["Content-Disposition"] = content_disposition(
            link_file(campaign.slug, sharer, file)
        )
        # It names a sharer: kept by no shared cache (the console's own default).
        answer.headers["Cache-Control"] = "private, no-store"
    return answer
