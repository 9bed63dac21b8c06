"""Risk pages: the review queue, a flag's evidence, decisions (single and bulk) through
FlagService.decide (the reward listeners release or claw back), the referral tree, and one
person's page (their place in the tree, flags, rewards and links; marketing sees it too)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from flask import (
    abort,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from detectors.features import CONDUCT
from detectors.review import describe
from gateway.campaigns import Campaign, validate
from gateway.console import RISK, STAFF, audit, bp, can, roles, user
from gateway.console.labels import label
from gateway.errors import ApiError
from gateway.flags import (
    FLAG_KINDS,
    STATUSES,
    DecidedMeanwhile,
    Flag,
    FlagDecision,
    FlagSummary,
)
from gateway.i18n import N_
from gateway.people import Appearance
from gateway.services import services
from gateway.sharelinks import REFERRER_PATTERN
from gateway.store import keys
from gateway.store.scripts import hmget_many
from gateway.validation import ascii_digits

Page = Response | tuple[str, int] | str
log = logging.getLogger(__name__)

PAGE_SIZE = 50
#: Pages beyond this are refused: their offset would make the queue read every flag for nothing.
MAX_PAGE = 100_000
#: Children shown collapsed under each child on a tree page.
PREVIEW = 5
#: Rewards shown (and compared before and after a decision) per flag.
REWARDS_SHOWN = 200
SORTS = ("score", "amount", "newest")


def _filters() -> tuple[dict[str, Any], list[str]]:
    """The queue's filters from the address, and what was wrong with it: a bad value (a score
    typed "0,5", a page past the limit, an unknown word) is dropped for its default and said
    above the queue, so the reviewer keeps the rest of the filters and the queue."""
    args = request.args
    problems: list[str] = []
    unknown = set(args) - {"campaign", "kind", "status", "min_score", "sort", "page"}
    if unknown:
        problems.append(_("Unknown filter: %(names)s", names=_(", ").join(sorted(unknown))))
    status = args.get("status", "open") or None
    kind = args.get("kind") or None
    if status is not None and status not in STATUSES:
        problems.append(_("The status is one of: %(names)s.", names=_(", ").join(STATUSES)))
        status = "open"
    if kind is not None and kind not in FLAG_KINDS:
        problems.append(_("The kind is one of: %(names)s.", names=_(", ").join(FLAG_KINDS)))
        kind = None
    raw_score = args.get("min_score", "").strip()
    try:
        min_score = float(raw_score) if raw_score else 0.0
    except ValueError:
        min_score = -1.0
    if not 0.0 <= min_score <= 1.0:
        problems.append(_("The minimum score is a number from 0 to 1."))
        raw_score, min_score = "", 0.0
    sort = args.get("sort", "score")
    if sort not in SORTS:
        problems.append(_("Sort by score, amount or newest."))
        sort = "score"
    page = args.get("page", "1")
    if not ascii_digits(page) or not 1 <= int(page) <= MAX_PAGE:
        problems.append(_("The page is a whole number from 1 to %(most)s.", most=MAX_PAGE))
        page = "1"
    return {
        "campaign": args.get("campaign") or "",
        "kind": kind or "",
        "status": status or "",
        "min_score": raw_score,
        "sort": sort,
        "page": int(page),
        "_status": status,
        "_kind": kind,
        "_min_score": min_score,
    }, [str(problem) for problem in problems]


def _at_stake(flags: Sequence[Flag | FlagSummary]) -> dict[str, int]:
    """Reward units a flag's decision would move, read from the ledger for campaigns whose flags
    are not in the amount-at-stake index yet (created before it; `refgate flags reindex`): a
    participant's reward, or the credited and held totals of a referrer (or a cluster's
    members, the first 50). Click flags count 0 here (their conversions are found only by
    scanning the referrer's rewards)."""
    redis = services().store.main
    out = {flag.id: 0 for flag in flags}
    by_campaign: dict[int, list[Flag | FlagSummary]] = {}
    for flag in flags:
        by_campaign.setdefault(int(flag.id.partition("-")[0], 16), []).append(flag)
    for campaign_id, group in by_campaign.items():
        ck = keys.campaign_keys(campaign_id)
        people = [f for f in group if f.kind == "participant"]
        for flag, (amount, status) in zip(
            people,
            hmget_many(redis, [ck.reward(f.subject) for f in people], ("amount", "status")),
            strict=True,
        ):
            out[flag.id] = int(amount or 0) if status in (b"credited", b"held") else 0
        sharers = [
            (f, f.members[:50] if f.kind == "cluster" else [f.subject])
            for f in group
            if f.kind in ("referrer", "cluster")
        ]
        names = [name for _f, subjects in sharers for name in subjects]
        totals = hmget_many(redis, [ck.referrer_rewards(n) for n in names], ("credited", "held"))
        rows = iter(totals)
        for flag, subjects in sharers:
            out[flag.id] = sum(int(v or 0) for _n in subjects for v in next(rows))
    return out


@bp.get("/flags")
@roles(*RISK)
def flags() -> Page:
    found = services()
    filters, wrong = _filters()
    slug = filters["campaign"]
    campaign_ids = [found.campaigns.require(slug).id] if slug else list(found.campaigns.iter_ids())
    start = (filters["page"] - 1) * PAGE_SIZE
    stake: dict[str, int] | None = None
    indexed = found.flags.stake_indexed(campaign_ids)
    if filters["sort"] == "amount" and indexed:
        # By amount at stake: one page from the amount-at-stake index, whatever the filters.
        shown, total, stake = found.flags.by_stake(
            campaign_ids,
            status=filters["_status"],
            kind=filters["_kind"],
            min_score=filters["_min_score"],
            limit=PAGE_SIZE,
            offset=start,
        )
    elif filters["_status"] == "open" and filters["_kind"] is None and filters["sort"] == "score":
        # The usual view (open flags by score): one page from the open index.
        shown, total = found.flags.open_page(
            campaign_ids, min_score=filters["_min_score"], limit=PAGE_SIZE, offset=start
        )
    else:
        # Other views: summaries of every matching flag (a few fields each), then one page.
        matching = found.flags.summaries(
            campaign_ids,
            status=filters["_status"],
            kind=filters["_kind"],
            min_score=filters["_min_score"],
        )
        if filters["sort"] == "amount":
            log.warning(
                "review queue by amount read from the ledger: a campaign has no amount-at-stake "
                "index yet (run `refgate flags reindex`)"
            )
            amounts = stake = _at_stake(matching)
            matching.sort(key=lambda f: (-amounts[f.id], -f.score, f.id))
        elif filters["sort"] == "newest":
            matching.sort(key=lambda f: (-f.updated_at, f.id))
        else:
            matching.sort(key=lambda f: (f.score, f.id), reverse=True)  # as open_page
        page_flags = (found.flags.get(f.id) for f in matching[start : start + PAGE_SIZE])
        shown, total = [f for f in page_flags if f is not None], len(matching)
    if stake is None:
        stake = found.flags.stakes(shown) if indexed else _at_stake(shown)
    # An empty status (every status) is a choice of its own: the pager keeps it.
    query = {
        k: v
        for k, v in filters.items()
        if not k.startswith("_") and k != "page" and (v or k == "status")
    }
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    if filters["page"] > pages and not wrong:
        # Past the end (the last page's flags were just decided, or a typed page number): the
        # last page that has flags, not an empty table saying there is nothing to review.
        return redirect(url_for("console.flags", **query, page=pages))
    page = render_template(
        "console/flags.html",
        flags=shown,
        stake=stake,
        total=total,
        filters=filters,
        campaigns=found.campaigns.list(),
        kinds=FLAG_KINDS,
        statuses=STATUSES,
        page=filters["page"],
        pages=pages,
        query=query,
        back=url_for("console.flags") + ("?" + urlencode(request.args) if request.args else ""),
        results=get_flashed_messages(category_filter=["message"]),
        problems=[*wrong, *get_flashed_messages(category_filter=["error"])],
        bulk_note=session.pop("bulk_note", ""),
    )
    return (page, 400) if wrong else page


def _queue_url(value: str) -> str:
    """``value`` if it is the review queue's address (with its filters and page), else the
    queue's: where "back to the queue" goes, never elsewhere."""
    queue = url_for("console.flags")
    return value if value == queue or value.startswith(queue + "?") else queue


def _flag_campaign(flag: Flag) -> Campaign:
    campaign = services().campaigns.get(flag.campaign)
    if campaign is None:
        abort(404)
    return campaign


def _rewards(campaign: Campaign, flag: Flag) -> list[dict[str, Any]]:
    found = services()
    users = found.rewards.affected(campaign.id, flag)[:REWARDS_SHOWN]
    return [r for r in (found.rewards.get(campaign.id, u) for u in users) if r is not None]


def _at_stake_now(campaign: Campaign, flag: Flag) -> dict[str, dict[str, int]]:
    """Every reward the flag is about that a decision would move, by status: how many and how
    many units, held and credited (all of them, not only the rewards the page lists)."""
    users = services().rewards.affected(campaign.id, flag)
    ck = keys.campaign_keys(campaign.id)
    out = {status: {"n": 0, "units": 0} for status in ("held", "credited")}
    rows = hmget_many(services().store.main, [ck.reward(u) for u in users], ("status", "amount"))
    for status, amount in rows:
        if status and status.decode() in out:
            out[status.decode()]["n"] += 1
            out[status.decode()]["units"] += int(amount or 0)
    return out


def _tally(campaign: Campaign, flag: Flag) -> dict[str, int]:
    """The flagger's running click tally of a referrer: clicks, suspicious, blocked, self, and
    how often each detector fired (``d:<name>``)."""
    if flag.kind != "referrer":
        return {}
    key = keys.campaign_keys(campaign.id).referrer_tally(flag.subject)
    return {k.decode(): int(v) for k, v in services().store.main.hgetall(key).items()}


def _joins(campaign: Campaign, users: list[str]) -> dict[str, Any]:
    """When the participants a flag touches joined, from which network prefix and device (salted
    hashes), oldest first, with the prefixes and devices they share."""
    ck = keys.campaign_keys(campaign.id)
    pipe = services().store.main.pipeline(transaction=False)
    for name in users:
        pipe.hmget(ck.participant(name), "joined", "parent", "prefix", "device", "visitor")
    rows = []
    for name, values in zip(users, pipe.execute(), strict=True):
        joined, parent, prefix, device, visitor = (v.decode() if v else "" for v in values)
        if joined:
            rows.append(
                {
                    "user": name,
                    "joined": float(joined),
                    "parent": parent,
                    "prefix": prefix,
                    "device": device,
                    "visitor": visitor,
                }
            )
    rows.sort(key=lambda r: r["joined"])
    prefixes = Counter(r["prefix"] for r in rows if r["prefix"])
    devices = Counter(r["device"] for r in rows if r["device"])
    return {
        "rows": rows,
        "prefixes": prefixes.most_common(20),
        "devices": [(d, n) for d, n in devices.most_common(20) if n > 1],
    }


@bp.get("/flags/<flag_id>")
@roles(*RISK)
def flag(flag_id: str) -> Page:
    found = services()
    flag = found.flags.get(flag_id)
    if flag is None:
        abort(404)
    campaign = _flag_campaign(flag)
    subtree = None
    if flag.kind in ("referrer", "participant"):
        try:
            subtree = found.tree.subtree(campaign, flag.subject, depth=2, limit=20)
        except ApiError:
            subtree = None
    evidence = {k: v for k, v in flag.evidence.items() if k != "sources"}
    kept = session.pop("flag_note", None)
    rewards = _rewards(campaign, flag)
    involved = sorted({*flag.members[:REWARDS_SHOWN], *(r["user"] for r in rewards)})
    tally = _tally(campaign, flag)
    # What later clicks on these sharers' links are told (gateway.referrer_risk): the subject
    # of a referrer or participant flag, the members of a cluster.
    subjects = [flag.subject] if flag.kind in ("referrer", "participant") else flag.members[:100]
    click_path = _click_path(campaign, subjects)
    return render_template(
        "console/flag.html",
        flag=flag,
        campaign=campaign,
        sources=flag.evidence.get("sources", {}),
        evidence=evidence,
        members=flag.members[:100],
        subtree=subtree,
        tree_url=url_for("console.tree", slug=campaign.slug),
        people_url=people_url(campaign.slug),
        rewards=rewards,
        joins=_joins(campaign, involved),
        tally={k: v for k, v in tally.items() if not k.startswith("d:")},
        detectors={k[2:]: v for k, v in tally.items() if k.startswith("d:")},
        click_path=click_path,
        subject_risk=click_path.get(flag.subject),
        stake=_at_stake_now(campaign, flag),
        back=_queue_url(request.args.get("back", "")),
        note=kept[1] if isinstance(kept, list) and kept[:1] == [flag.id] else "",
        results=get_flashed_messages(category_filter=["message"]),
        problems=get_flashed_messages(category_filter=["error"]),
    )


def _click_path(campaign: Campaign, referrers: list[str]) -> dict[str, dict[str, Any]]:
    """What later clicks on these sharers' links are told (gateway.referrer_risk), for those
    with an entry: its state, score, why (in words) and whether it costs their clicks credit."""
    return {
        referrer: {
            "state": state,
            "score": score,
            "why": describe(source),
            "conduct": source in CONDUCT or state == "fraud",
        }
        for referrer, (state, score, source) in services()
        .referrer_risk.states(campaign.id, referrers)
        .items()
    }


def people_url(slug: str) -> str:
    """The address of a campaign's people pages without the name: templates append each name
    (a url_for per node would cost a page of the tree a few hundred route builds)."""
    return url_for("console.person", slug=slug, name="_")[:-1]


def _decide(flag_id: str, decision: str, note: str, expect: str | None) -> str:
    """Decide through FlagService (as the API does) if the flag's status is still ``expect``
    (the one the reviewer saw); returns what it did to rewards. Raises DecidedMeanwhile."""
    found = services()
    flag = found.flags.get(flag_id)
    if flag is None:
        abort(404)
    campaign = _flag_campaign(flag)
    before = {r["user"]: r["status"] for r in _rewards(campaign, flag)}
    # The status the form says it saw is checked as the API's ``expect`` is (a tampered one is
    # a 400, never a "decided meanwhile" about a flag nobody decided).
    body = validate(
        FlagDecision, {"decision": decision, "note": note, "expect": expect}, "invalid decision"
    )
    found.flags.decide(flag_id, body.decision, body.note, user().actor, expect=body.expect)
    after = {r["user"]: r["status"] for r in _rewards(campaign, flag)}
    moves = Counter((before.get(u, ""), s) for u, s in after.items() if before.get(u) != s)
    audit("flag.decide", flag_id, decision=body.decision, note=body.note, moved=sum(moves.values()))
    if moves:
        changes = _(", ").join(
            f"{n} {label(old) if old else '-'} → {label(new)}"
            for (old, new), n in sorted(moves.items())
        )
        said = _(
            "Flag %(id)s decided %(decision)s: rewards %(changes)s.",
            id=flag_id,
            decision=label(body.decision),
            changes=changes,
        )
    else:
        said = _(
            "Flag %(id)s decided %(decision)s: no reward changed.",
            id=flag_id,
            decision=label(body.decision),
        )
    # A legit decision leaves held what another open flag is about: say so, or the reviewer
    # would wonder why cleared rewards were not paid.
    still_held = sum(s == "held" for s in after.values()) if body.decision == "legit" else 0
    if still_held:
        held = _("%(n)s stay held: other open flags are about them.", n=still_held)
        said = _("%(sentence)s %(next)s", sentence=said, next=held)
    return str(said)


def _decided_meanwhile(flag: Flag) -> str:
    return str(
        _(
            "Flag %(id)s was decided %(decision)s by %(who)s while this page was open: nothing "
            "was changed.",
            id=flag.id,
            decision=label(flag.status),
            who=flag.decided_by,
        )
    )


@bp.post("/flags/<flag_id>/decision")
@roles(*RISK)
def decide(flag_id: str) -> Page:
    decision, note = request.form.get("decision", ""), request.form.get("note", "")
    # The state the page showed: a decision taken meanwhile (a colleague's, or this one sent
    # twice) is not silently replaced (the check is the decision script's own, so two at once
    # cannot both pass); the page shows it, and the note waits for a second look.
    seen = request.form.get("seen") or None
    # Back to the flag, keeping the way back to the queue as the reviewer filtered it.
    back = _queue_url(request.form.get("back", ""))
    again = url_for("console.flag", flag_id=flag_id, back=back)
    try:
        flash(_decide(flag_id, decision, note, expect=seen))
    except DecidedMeanwhile as exc:
        flash(_decided_meanwhile(exc.flag), "error")
        session["flag_note"] = [flag_id, note[:2000]]
    return redirect(again)


@bp.post("/flags/decisions")
@roles(*RISK)
def decide_many() -> Page:
    ids = list(dict.fromkeys(request.form.getlist("flag")))
    decision, note = request.form.get("decision", ""), request.form.get("note", "")
    back = _queue_url(request.form.get("back", ""))
    if not ids or len(ids) > PAGE_SIZE:
        # Back to the queue as it was, saying what to do, with the note kept for the next try
        # (an error page would lose what the reviewer wrote).
        flash(_("Select 1 to %(n)s flags.", n=PAGE_SIZE), "error")
        session["bulk_note"] = note[:2000]
        return redirect(back)
    validate(FlagDecision, {"decision": decision, "note": note}, "invalid decision")
    chosen = [services().flags.get(flag_id) for flag_id in ids]
    for flag_id, found in zip(ids, chosen, strict=True):
        if found is None:
            raise ApiError(404, "flag_not_found", _("No flag %(id)s.", id=flag_id))
    for found in chosen:
        assert found is not None
        # The queue offers only open flags: one decided since (by a colleague, or this form
        # sent twice) keeps that decision.
        try:
            flash(_decide(found.id, decision, note, expect="open"))
        except DecidedMeanwhile as exc:
            flash(_decided_meanwhile(exc.flag), "error")
    return redirect(back)


# -- the referral tree ---------------------------------------------------------------------------


@bp.get("/campaigns/<slug>/tree")
@roles(*STAFF)
def tree(slug: str) -> Page:
    found = services()
    campaign = found.campaigns.require(slug)
    node_id = request.args.get("node", "").strip()
    cursor = request.args.get("cursor", "0")
    if not ascii_digits(cursor) or int(cursor) > 10**9:
        abort(400)
    stats = found.tree.stats(campaign, top=20)
    if not node_id:
        leaders = [r["referrer"] for r in stats["top_sharers"]]
        nodes = [n for n in found.tree.nodes(campaign, leaders) if n is not None]
        return render_template(
            "console/tree.html",
            campaign=campaign,
            stats=stats,
            node=None,
            leaders=nodes,
            previews={},
            tree_url=url_for("console.tree", slug=slug),
            people_url=people_url(slug),
        )
    node = found.tree.subtree(campaign, node_id, depth=1, limit=PAGE_SIZE, cursor=int(cursor))
    total = node["children_page"]["total"]
    if int(cursor) > 0 and int(cursor) >= total:  # past the last child: the last page
        last = (max(total - 1, 0) // PAGE_SIZE) * PAGE_SIZE
        return redirect(url_for("console.tree", slug=slug, node=node_id, cursor=last))
    return render_template(
        "console/tree.html",
        campaign=campaign,
        stats=stats,
        node=node,
        previews=_previews(campaign, node["children_page"]["nodes"]),
        tree_url=url_for("console.tree", slug=slug),
        people_url=people_url(slug),
        ancestors=found.tree.ancestors(campaign, node_id),
        cursor=int(cursor),
        page_size=PAGE_SIZE,
        leaders=[],
    )


def _previews(campaign: Campaign, nodes: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The first PREVIEW children of each node with children (collapsed under it), read in two
    round trips whatever the page holds: a page of the tree is never more than
    PAGE_SIZE * (1 + PREVIEW) nodes, however big the subtrees are."""
    found = services()
    ck = keys.campaign_keys(campaign.id)
    parents = [n["id"] for n in nodes if n["children"]]
    pipe = found.store.main.pipeline(transaction=False)
    for parent in parents:
        pipe.zrange(ck.children(parent), 0, PREVIEW - 1)
    children = {
        p: [c.decode() for c in ids] for p, ids in zip(parents, pipe.execute(), strict=True)
    }
    flat = [c for ids in children.values() for c in ids]
    loaded = dict(zip(flat, found.tree.nodes(campaign, flat), strict=True))
    return {p: [loaded[c] for c in ids if loaded[c] is not None] for p, ids in children.items()}


# -- one person's whole story ---------------------------------------------------------------------

#: How a flag concerns the person of a people page, by the flag's kind.
AS = {
    "referrer": N_("as a sharer"),
    "participant": N_("as a participant"),
    "click": N_("the click they joined through"),
    "cluster": N_("a member of this cluster"),
}


@bp.get("/campaigns/<slug>/people/<name>")
@roles(*STAFF)
def person(slug: str, name: str) -> Page:
    """Everything known about one participant or sharer of a campaign, each read by key: their
    place in the tree, the flags about them (their own, their join's click, the clusters the
    cluster index lists them in), their reward for joining and their referrals' rewards, their
    links' state and what the click path does with them. Nothing here reads every participant,
    flag or reward of the campaign."""
    found = services()
    campaign = found.campaigns.require(slug)
    node = found.tree.nodes(campaign, [name])[0]
    joined_on = ""
    if node is not None:
        click = found.store.main.hget(keys.campaign_keys(campaign.id).participant(name), "click")
        joined_on = click.decode() if click else ""
    links = found.links.state(campaign, name)
    flags, clusters_indexed = found.flags.about(campaign.id, name, joined_on)
    if node is None and links is None and not flags:
        abort(404)  # no one of that name: not in the tree, no links, no flag
    order = {kind: n for n, kind in enumerate(AS)}
    flags.sort(key=lambda f: (order.get(f.kind, len(order)), -f.score, f.id))
    referred, referred_total, _totals = found.rewards.of_referrer(
        campaign.id, name, limit=REWARDS_SHOWN
    )
    own_reward = found.rewards.get(campaign.id, name)
    # What an open flag's decision would still move: credited (clawed back on fraud) and held.
    pending = [
        r
        for r in [*referred, *([own_reward] if own_reward else [])]
        if r["status"] in ("credited", "held")
    ]
    # Every reward's, not the listed ones': a heavy sharer has more than are listed.
    by_status = found.rewards.referrer_totals(campaign.id, name)
    return render_template(
        "console/person.html",
        campaign=campaign,
        name=name,
        node=node,
        links=links,
        flags=flags,
        clusters_indexed=clusters_indexed,
        concerns={kind: _(text) for kind, text in AS.items()},
        own_reward=own_reward,
        open_flags=found.flags.open_at_stake(campaign.id, pending),
        referred=referred,
        referred_total=referred_total,
        by_status=by_status,
        risk=_click_path(campaign, [name]).get(name) if can(*RISK) else None,
        tree_url=url_for("console.tree", slug=slug),
        people_url=people_url(slug),
        # The other campaigns only: this one's facts are read above.
        elsewhere=found.people.everywhere(name, besides=campaign.id),
    )


# -- one person across every campaign -------------------------------------------------------------


@bp.get("/people")
@roles(*STAFF)
def people() -> Page:
    """Find a person by their external id in every campaign (support is asked about a person,
    not a campaign; rings work across campaigns): a row per campaign that knows them, each
    linking to their page there."""
    name = request.args.get("name", "").strip()
    problem = ""
    found: list[Appearance] | None = None
    if name:
        if REFERRER_PATTERN.fullmatch(name):
            found = services().people.everywhere(name)
        else:
            problem = _(
                "A person's id is 1-128 characters: ASCII letters (A-Z, a-z), digits (0-9) "
                "and . _ : @ + - (as the landing application sends it)."
            )
    page = render_template(
        "console/people.html",
        name=name,
        appearances=found,
        problem=problem,
        concerns={kind: _(text) for kind, text in AS.items()},
    )
    return (page, 400) if problem else page
